// Benchmarks of the whole Predict path: the handler called directly (model
// in ONNX Runtime) and gRPC over bufconn, one client and eight in parallel.

package transport_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

func benchManager(b *testing.B) *serving.Manager {
	b.Helper()
	if err := serving.InitRuntime(""); err != nil {
		b.Fatal(err)
	}
	v := model.MustParseVersion("v1.1.0")
	q := onnxfile.RandomMLP(1)
	ob, err := onnxfile.Encode(q, v)
	if err != nil {
		b.Fatal(err)
	}
	row := make([]float32, model.NumFeatures)
	for j := range row {
		row[j] = 0.5
	}
	y := q.Forward(row, 1)
	m := &model.Manifest{
		Schema: model.ManifestSchema, Version: v,
		Model:     model.ModelFile{File: "p.onnx", SHA256: model.SHA256Hex(ob), SizeBytes: int64(len(ob))},
		Signature: model.DefaultSignature(), Features: model.DefaultFeatures(), Outputs: model.DefaultOutputs(),
		Golden: model.Golden{Tolerance: 1e-4, Inputs: [][]float32{row}, Outputs: [][]float32{y}},
	}
	mgr := serving.NewManager(serving.Options{})
	if err := mgr.Load(ob, m); err != nil {
		b.Fatal(err)
	}
	if _, err := mgr.Activate(v); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(mgr.Close)
	return mgr
}

func benchRequest(n int) *recommendationv1.PredictRequest {
	req := &recommendationv1.PredictRequest{}
	for i := range n {
		v := make([]float32, model.NumFeatures)
		for j := range v {
			v[j] = float32((i*7+j*3)%11) / 10
		}
		req.Instances = append(req.Instances, &recommendationv1.Instance{
			ContainerId: fmt.Sprintf("c%d", i),
			Input:       &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{Values: v}},
		})
	}
	return req
}

func BenchmarkWholeHandler(b *testing.B) {
	mgr := benchManager(b)
	srv := transport.NewPredictServer(transport.ModelsOf(mgr), transport.PredictOptions{}, nil)
	ctx := context.Background()
	for _, n := range []int{1, 16, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			req := benchRequest(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := srv.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWholeGRPC(b *testing.B) {
	mgr := benchManager(b)
	srv := transport.NewGRPCServer(nil, transport.NewHealth())
	recommendationv1.RegisterRecommendationServiceServer(srv,
		transport.NewPredictServer(transport.ModelsOf(mgr), transport.PredictOptions{}, nil))
	buf := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(buf) }()
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return buf.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	client := recommendationv1.NewRecommendationServiceClient(conn)
	ctx := context.Background()
	for _, n := range []int{1, 16, 100} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			req := benchRequest(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("parallel8/batch=%d", n), func(b *testing.B) {
			req := benchRequest(n)
			b.ReportAllocs()
			b.SetParallelism(4) // 8 goroutines on 2 Ps, like ghz's 8 workers
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Predict(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
