package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/transport"
)

func TestRESTMethodNotAllowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for _, tt := range []struct {
		method, path, allow string
	}{
		{"GET", "/v1/predict", "POST"},
		{"PUT", "/v1/predict", "POST"},
		{"DELETE", "/v1/models/v1.1.0", "GET"},
		{"PUT", "/v1/models", "GET, POST"},
		{"DELETE", "/v1/models:rollback", "POST"},
		// grpc-gateway routes GET …/j1:cancel to GetJob with id "j1:cancel".
		{"PATCH", "/v1/training-jobs/j1:cancel", "GET, POST"},
	} {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, h.rest.URL+tt.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e restError
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tt.allow ||
				!strings.Contains(e.Message, "allowed: "+tt.allow) || !strings.Contains(e.Message, tt.method) {
				t.Errorf("got %d Allow %q %q; want 405 Allow %q", resp.StatusCode, resp.Header.Get("Allow"), e.Message, tt.allow)
			}
		})
	}
	t.Run("UnknownPathNotFound", func(t *testing.T) {
		resp, err := http.Get(h.rest.URL + "/v1/nothing-here")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("got %d; want 404", resp.StatusCode)
		}
	})
}

// TestRESTRoutesMatchHTTPYAML keeps the gateway's route table (which
// answers Allow) equal to the routes http.yaml maps.
func TestRESTRoutesMatchHTTPYAML(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../api/proto/recommendation/v1/http.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:- )?(get|post|put|delete|patch): "([^"]+)"`).FindAllStringSubmatch(string(b), -1) {
		want = append(want, strings.ToUpper(m[1])+" "+m[2])
	}
	got := transport.RESTRoutes()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("gateway routes %v; http.yaml maps %v", got, want)
	}
}

// rawCodec sends pre-encoded bytes as they are, to put on the wire what a
// Go client would refuse to marshal.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (rawCodec) Unmarshal(b []byte, v any) error { return proto.Unmarshal(b, v.(proto.Message)) }
func (rawCodec) Name() string                    { return "proto" }

func TestGRPCInvalidUTF8IsInvalidArgument(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	// PredictRequest{instances: [{container_id: "\xff", features: 12 zeros}]}.
	var feat []byte
	for range 12 {
		feat = protowire.AppendFixed32(feat, 0)
	}
	var nf []byte
	nf = protowire.AppendTag(nf, 1, protowire.BytesType)
	nf = protowire.AppendBytes(nf, feat)
	var inst []byte
	inst = protowire.AppendTag(inst, 1, protowire.BytesType)
	inst = protowire.AppendString(inst, "ns/\xffpod")
	inst = protowire.AppendTag(inst, 2, protowire.BytesType)
	inst = protowire.AppendBytes(inst, nf)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, inst)

	for name, body := range map[string][]byte{
		"InvalidUTF8":   req,
		"BadWireFormat": {0x0a, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			var resp recommendationv1.PredictResponse
			err := h.conn.Invoke(context.Background(), "/recommendation.v1.RecommendationService/Predict", body, &resp,
				grpc.ForceCodec(rawCodec{}))
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "request is not a valid recommendation.v1.PredictRequest") {
				t.Errorf("got %v %q; want InvalidArgument naming the request", st.Code(), st.Message())
			}
		})
	}
	if _, err := h.client.Predict(context.Background(), request(1, nil)); err != nil {
		t.Errorf("a good request after bad ones: %v", err)
	}
}
