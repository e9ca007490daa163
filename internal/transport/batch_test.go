package transport_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
)

// TestPredictBatchIndependence checks what the manifest's quantization text
// promises: each row's answer is independent of the batch it came in. It
// sends rows alone and inside batches of several sizes (and remainders of
// one) to the default model in ONNX Runtime and wants identical answers.
func TestPredictBatchIndependence(t *testing.T) {
	t.Parallel()
	e := newORTEnv(t)
	rows := propertyRows(rand.New(rand.NewPCG(3, 9)), 301)
	predict := func(rs [][]float32) []*recommendationv1.Prediction {
		t.Helper()
		req := &recommendationv1.PredictRequest{}
		for _, r := range rs {
			req.Instances = append(req.Instances, featuresInstance("c", r))
		}
		resp, err := e.client.Predict(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetPredictions()
	}
	alone := make([]*recommendationv1.Prediction, len(rows))
	for i, r := range rows {
		alone[i] = predict([][]float32{r})[0]
	}
	differ := 0
	for _, size := range []int{2, 3, 7, 16, 100, 301} {
		for lo := 0; lo < len(rows); lo += size {
			for j, p := range predict(rows[lo:min(lo+size, len(rows))]) {
				if !proto.Equal(p, alone[lo+j]) {
					if differ++; differ <= 3 {
						t.Errorf("row %d in a batch of %d:\n got %v\nalone %v", lo+j, size, p, alone[lo+j])
					}
				}
			}
		}
	}
	if differ > 0 {
		t.Errorf("%s rows answered differently alone and in a batch", fmt.Sprint(differ))
	}
}
