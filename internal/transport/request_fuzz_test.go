package transport_test

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
)

// FuzzPredictRequest sends fuzzed bytes as a Predict request: as the REST
// body of POST /v1/predict (JSON), and, when they decode as a protobuf
// PredictRequest, over gRPC. Whatever the bytes, the answer is a success
// or a refusal of the caller's input (400 / INVALID_ARGUMENT, NOT_FOUND for
// an unknown pinned version, 413 for an oversized body), never a server
// error, and a success has one prediction per instance. The seed corpus is
// in testdata/fuzz/FuzzPredictRequest.
func FuzzPredictRequest(f *testing.F) {
	f.Add([]byte(`{"instances":[{"container_id":"a","features":{"values":[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1,1]}}]}`))
	f.Add([]byte(`{"instances":[{"container_id":"a","raw":{"cpu_p50_cores":0.2,"cpu_p95_cores":0.4,"cpu_p99_cores":0.5}}]}`))
	f.Add([]byte(`{"instances":[],"model_version":"v9.9.9"}`))
	f.Add([]byte("{\"instances\":[{\"container_id\":\"\xff\xfe\"}]}"))
	f.Add([]byte(`{"instances":[{"features":{"values":["NaN",1e39]}}]}`))
	if b, err := proto.Marshal(&recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{featuresInstance("p", goodFeatures(1))}}); err == nil {
		f.Add(b)
	}
	h := newHarness(f, harnessOptions{})
	f.Fuzz(func(t *testing.T, b []byte) {
		switch code, body := h.postPredict(t, b); code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("REST body %q: %d %s; want 200, 400, 404 or 413", b, code, body)
		}
		var req recommendationv1.PredictRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		resp, err := h.client.Predict(context.Background(), &req)
		switch status.Code(err) {
		case codes.OK:
			if len(resp.GetPredictions()) != len(req.GetInstances()) {
				t.Fatalf("%d predictions for %d instances", len(resp.GetPredictions()), len(req.GetInstances()))
			}
		case codes.InvalidArgument, codes.NotFound, codes.ResourceExhausted:
		default:
			t.Fatalf("gRPC request %v: %v; want OK, INVALID_ARGUMENT, NOT_FOUND or RESOURCE_EXHAUSTED", &req, err)
		}
	})
}
