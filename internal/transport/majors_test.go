package transport_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/transport"
)

// newTwoMajors starts the registry environment with v1.1.0 (the embedded
// default) and v2.0.0 both active.
func newTwoMajors(t *testing.T) *regEnv {
	t.Helper()
	e := newRegEnv(t)
	e.register(t, "v2.0.0", 200)
	if _, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v2.0.0"}); err != nil {
		t.Fatalf("activate v2.0.0: %v", err)
	}
	return e
}

// rawRow is a plausible container's raw metrics with every catalogue field.
func rawRow() features.Raw {
	r := features.Raw{CPUP50: 0.2, CPUP95: 0.5, CPUP99: 0.7, MemP50: 1e9, MemP95: 1.2e9, MemP99: 1.3e9,
		CPUVariance: 0.3, MemTrend: 0.01, ThrottleRatio: 0, HourOfDay: 10, DayOfWeek: 2, WorkloadAgeDays: 30}
	for _, f := range model.Catalog()[model.NumFeatures:] {
		_, i, _ := model.LookupFeature(f.Spec.Name)
		switch {
		case strings.HasPrefix(f.Spec.Name, "cpu"):
			r.Set(i, 0.9)
		default:
			r.Set(i, 1.5e9)
		}
	}
	return r
}

func (e *regEnv) predictVersion(t *testing.T, req *recommendationv1.PredictRequest) string {
	t.Helper()
	grpcResp, err := e.predict.Predict(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("gRPC Predict: %v", err)
	}
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var restResp recommendationv1.PredictResponse
	e.callOK(t, "POST", "/v1/predict", string(body), &restResp)
	if g, r := grpcResp.GetModelVersion(), restResp.GetModelVersion(); g != r {
		t.Errorf("gRPC answered from %s, REST from %s", g, r)
	}
	return grpcResp.GetModelVersion()
}

// TestTwoMajorsRouting: with v1 and v2 both active, each request is
// answered by the major its input (or its pin, or model_major) names.
func TestTwoMajorsRouting(t *testing.T) {
	t.Parallel()
	e := newTwoMajors(t)
	norm := func(width int) *recommendationv1.Instance {
		v := make([]float32, width)
		for j := range v {
			v[j] = 0.4
		}
		return &recommendationv1.Instance{Input: &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{Values: v}}}
	}
	v2, _ := model.FeaturesFor(2)
	full := transport.RawMetricsOf(rawRow())
	v1only := transport.RawMetricsOf(rawRow())
	v1only.CpuMaxCores, v1only.MemMaxBytes = nil, nil
	raw := func(r *recommendationv1.RawMetrics) *recommendationv1.Instance {
		return &recommendationv1.Instance{Input: &recommendationv1.Instance_Raw{Raw: r}}
	}
	for name, tc := range map[string]struct {
		req  *recommendationv1.PredictRequest
		want string
	}{
		"Normalized12":     {&recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{norm(12), norm(12)}}, "v1.1.0"},
		"NormalizedV2":     {&recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{norm(len(v2))}}, "v2.0.0"},
		"RawWithV2Fields":  {&recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{raw(full)}}, "v2.0.0"},
		"RawWithoutV2":     {&recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{raw(v1only)}}, "v1.1.0"},
		"RawMixedBatch":    {&recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{raw(full), raw(v1only)}}, "v1.1.0"},
		"ModelMajor1":      {&recommendationv1.PredictRequest{ModelMajor: 1, Instances: []*recommendationv1.Instance{raw(full)}}, "v1.1.0"},
		"PinnedV2":         {&recommendationv1.PredictRequest{ModelVersion: "v2.0.0", Instances: []*recommendationv1.Instance{raw(full)}}, "v2.0.0"},
		"NormalizedAndRaw": {&recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{norm(12), raw(full)}}, "v1.1.0"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := e.predictVersion(t, tc.req); got != tc.want {
				t.Errorf("answered by %s; want %s", got, tc.want)
			}
		})
	}
	t.Run("ErrWidthNoMajorTakes", func(t *testing.T) {
		_, err := e.predict.Predict(rpcCtx(t), &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{norm(13)}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "12 (major 1), "+fmt.Sprint(len(v2))+" (major 2)") {
			t.Errorf("13 values: %v; want InvalidArgument naming both majors' widths", err)
		}
	})
	t.Run("ErrMajorNotServed", func(t *testing.T) {
		_, err := e.predict.Predict(rpcCtx(t), &recommendationv1.PredictRequest{ModelMajor: 3, Instances: []*recommendationv1.Instance{norm(12)}})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("model_major 3: %v; want Unavailable", err)
		}
	})
	t.Run("ErrPinnedV2MissingField", func(t *testing.T) {
		_, err := e.predict.Predict(rpcCtx(t), &recommendationv1.PredictRequest{ModelVersion: "v2.0.0", Instances: []*recommendationv1.Instance{raw(v1only)}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "cpu_max_cores: missing") {
			t.Errorf("v2 pinned without cpu_max_cores: %v; want InvalidArgument naming it", err)
		}
	})
}

// TestTwoMajorsRegistryAPI: each major has its own active version,
// rollback and download; a rollback of one major leaves the other serving.
func TestTwoMajorsRegistryAPI(t *testing.T) {
	t.Parallel()
	e := newTwoMajors(t)
	e.register(t, "v2.1.0", 210)
	if _, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v2.1.0"}); err != nil {
		t.Fatal(err)
	}
	var list recommendationv1.ListVersionsResponse
	e.callOK(t, "GET", "/v1/models", "", &list)
	if got := fmt.Sprint(list.GetActiveByMajor()); got != "map[1:v1.1.0 2:v2.1.0]" {
		t.Errorf("active_by_major = %s; want map[1:v1.1.0 2:v2.1.0]", got)
	}
	var act recommendationv1.GetActiveResponse
	e.callOK(t, "GET", "/v1/models:active?major=2", "", &act)
	if got := act.GetModel().GetVersion(); got != "v2.1.0" {
		t.Errorf("GET /v1/models:active?major=2 = %s; want v2.1.0", got)
	}
	var dl recommendationv1.DownloadVersionResponse
	e.callOK(t, "GET", "/v1/models:download?major=2", "", &dl)
	if dl.GetVersion() != "v2.1.0" || len(dl.GetOnnx()) == 0 {
		t.Errorf("GET /v1/models:download?major=2 = %s (%d bytes); want v2.1.0", dl.GetVersion(), len(dl.GetOnnx()))
	}
	// Roll back major 2 only.
	var rb recommendationv1.RollbackResponse
	e.callOK(t, "POST", "/v1/models:rollback", `{"major":2,"reason":"v2.1 regressed"}`, &rb)
	if rb.GetModel().GetVersion() != "v2.0.0" {
		t.Errorf("rollback of major 2 went to %s; want v2.0.0", rb.GetModel().GetVersion())
	}
	e.checkServes(t, seedVersion, nil) // major 1 untouched
	if code, _, body := e.call(t, "POST", "/v1/models:rollback", `{"major":1}`); code != http.StatusNotFound {
		t.Errorf("rollback of major 1 with nothing before it: %d %s; want 404", code, body)
	}
	var hist recommendationv1.GetHistoryResponse
	e.callOK(t, "GET", "/v1/models/history?major=2&action=rollback", "", &hist)
	if n := len(hist.GetEntries()); n != 1 || hist.GetEntries()[0].GetMajor() != 2 {
		t.Errorf("major 2's rollbacks: %v; want one entry naming major 2", hist.GetEntries())
	}
}
