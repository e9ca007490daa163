// Command majors measures Predict of two majors side by side while each
// major is rolled back and re-activated every second, against the same
// load without swaps, on a running server (scripts/bench.sh starts one).
//
// It registers v1.90.0, v2.90.0 and v2.91.0 (random int8 weights: model
// quality does not matter here), activates v2.90.0, then alternates rounds
// of (a) no swaps and (b) one activation or rollback per major per second,
// each for -duration, with -concurrency callers sending major 1's 12
// normalized values or major 2's wider rows at random. It prints, per
// round, calls, failures, answers from the wrong major and the p50/p99
// latency, then the median p99 ratio (b)/(a).
//
//	go run ./scripts/bench/majors -grpc 127.0.0.1:50051 [-duration 6s] [-rounds 3] [-concurrency 8]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

func main() {
	addr := flag.String("grpc", "127.0.0.1:50051", "gRPC address of a server run with --insecure-no-auth")
	dur := flag.Duration("duration", 6*time.Second, "length of each round")
	rounds := flag.Int("rounds", 3, "rounds of each kind")
	conc := flag.Int("concurrency", 8, "concurrent callers")
	flag.Parse()
	if err := run(*addr, *dur, *rounds, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "majors:", err)
		os.Exit(1)
	}
}

// version builds a registrable version of major 1 or 2 from random weights.
func version(vs string, seed int64) ([]byte, string, error) {
	v := model.MustParseVersion(vs)
	q := onnxfile.RandomMLP(seed)
	feats := model.DefaultFeatures()
	if v.Major == 2 {
		q = onnxfile.RandomMLPV2(seed)
		var err error
		if feats, err = model.FeaturesFor(2); err != nil {
			return nil, "", err
		}
	}
	b, err := onnxfile.Encode(q, v)
	if err != nil {
		return nil, "", err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 9))
	x := make([]float32, 8*len(feats))
	for i := range x {
		x[i] = rng.Float32()
	}
	m := &model.Manifest{
		Schema: model.ManifestSchema, Version: v, CreatedAt: time.Now().UTC(),
		Model:     model.ModelFile{File: "predictor_" + vs + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: model.SignatureFor(len(feats)), Features: feats, Outputs: model.DefaultOutputs(),
		Quantization: model.DefaultQuantization(), Golden: trainer.GoldenFor(q, x, 8),
	}
	if v.Major == 2 {
		m.HistoryWindowHours = 7 * 24
	}
	mj, err := json.Marshal(m)
	return b, string(mj), err
}

type round struct {
	swaps                 bool
	calls, failed, wrong  int64
	p50, p99              time.Duration
	changes, changeFailed int
}

func run(addr string, dur time.Duration, rounds, conc int) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	reg := recommendationv1.NewModelRegistryServiceClient(conn)
	pred := recommendationv1.NewRecommendationServiceClient(conn)
	ctx := context.Background()

	for i, vs := range []string{"v1.90.0", "v2.90.0", "v2.91.0"} {
		b, mj, err := version(vs, int64(90+i))
		if err != nil {
			return err
		}
		if _, err := reg.RegisterVersion(ctx, &recommendationv1.RegisterVersionRequest{Onnx: b, ManifestJson: mj, Reason: "bench"}); err != nil {
			return fmt.Errorf("register %s: %w", vs, err)
		}
	}
	for _, vs := range []string{"v2.90.0"} {
		if _, err := reg.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: vs, Reason: "bench"}); err != nil {
			return fmt.Errorf("activate %s: %w", vs, err)
		}
	}
	act1, err := reg.GetActive(ctx, &recommendationv1.GetActiveRequest{Major: 1})
	if err != nil {
		return err
	}
	base1 := act1.GetModel().GetVersion()
	v2feats, _ := model.FeaturesFor(2)
	rows := map[int]*recommendationv1.PredictRequest{}
	for major, w := range map[int]int{1: model.NumFeatures, 2: len(v2feats)} {
		vals := make([]float32, w)
		for j := range vals {
			vals[j] = float32(j%7) / 7
		}
		rows[major] = &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{{
			ContainerId: "bench", Input: &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{Values: vals}}}}}
	}

	var results []round
	for r := 0; r < 2*rounds; r++ {
		res := round{swaps: r%2 == 1}
		stop := make(chan struct{})
		var swapWG sync.WaitGroup
		if res.swaps {
			swapWG.Add(1)
			go func() {
				defer swapWG.Done()
				t := time.NewTicker(time.Second)
				defer t.Stop()
				targets := map[int][2]string{1: {"v1.90.0", base1}, 2: {"v2.91.0", "v2.90.0"}}
				for k := 0; ; k++ {
					select {
					case <-stop:
						// Leave each major where the round found it.
						for major, tv := range targets {
							_, _ = reg.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: tv[1], Reason: "bench reset"})
							_ = major
						}
						return
					case <-t.C:
					}
					for major, tv := range targets {
						var err error
						if k%2 == 0 {
							_, err = reg.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: tv[0], Reason: "bench swap"})
						} else {
							_, err = reg.Rollback(ctx, &recommendationv1.RollbackRequest{Major: int32(major), Reason: "bench swap"})
						}
						res.changes++
						if err != nil {
							res.changeFailed++
							fmt.Fprintln(os.Stderr, "swap:", err)
						}
					}
				}
			}()
		}
		var (
			mu        sync.Mutex
			lat       []time.Duration
			calls     atomic.Int64
			failed    atomic.Int64
			wrong     atomic.Int64
			deadline  = time.Now().Add(dur)
			callersWG sync.WaitGroup
		)
		for c := 0; c < conc; c++ {
			callersWG.Add(1)
			go func(seed int) {
				defer callersWG.Done()
				rng := rand.New(rand.NewPCG(uint64(seed), uint64(r)))
				var mine []time.Duration
				for time.Now().Before(deadline) {
					major := 1 + rng.IntN(2)
					t0 := time.Now()
					resp, err := pred.Predict(ctx, rows[major])
					mine = append(mine, time.Since(t0))
					calls.Add(1)
					if err != nil {
						failed.Add(1)
						continue
					}
					if v, err := model.ParseVersion(resp.GetModelVersion()); err != nil || v.Major != major {
						wrong.Add(1)
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}(c)
		}
		callersWG.Wait()
		close(stop)
		swapWG.Wait()
		slices.Sort(lat)
		res.calls, res.failed, res.wrong = calls.Load(), failed.Load(), wrong.Load()
		if n := len(lat); n > 0 {
			res.p50, res.p99 = lat[n/2], lat[min(n-1, n*99/100)]
		}
		results = append(results, res)
		kind := "no swaps"
		if res.swaps {
			kind = fmt.Sprintf("swaps (%d changes, %d failed)", res.changes, res.changeFailed)
		}
		fmt.Printf("| %d | %s | %d | %d | %d | %s | %s |\n", r/2+1, kind, res.calls, res.failed, res.wrong, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond))
	}
	var quiet, swapping []time.Duration
	var failed, wrong int64
	for _, r := range results {
		failed += r.failed
		wrong += r.wrong
		if r.swaps {
			swapping = append(swapping, r.p99)
		} else {
			quiet = append(quiet, r.p99)
		}
	}
	slices.Sort(quiet)
	slices.Sort(swapping)
	mq, ms := quiet[len(quiet)/2], swapping[len(swapping)/2]
	fmt.Printf("\nmedian p99: %s without swaps, %s with both majors swapping every second: ratio %.2f; %d failed calls, %d answers from the wrong major\n",
		mq.Round(time.Microsecond), ms.Round(time.Microsecond), float64(ms)/float64(mq), failed, wrong)
	if failed > 0 || wrong > 0 {
		return fmt.Errorf("%d failed calls, %d answers from the wrong major", failed, wrong)
	}
	return nil
}
