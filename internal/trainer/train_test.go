package trainer

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"recommendation-api/internal/model"
)

// TestBackwardMatchesNumericGradient checks backprop against central
// differences of the asymmetric loss on a few rows.
func TestBackwardMatchesNumericGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	net := NewFloatMLP(rng)
	// The output clip passes gradients straight through on purpose; check
	// the exact gradient with a linear output.
	net.Layers[len(net.Layers)-1].Activation = model.ActNone
	d := &Dataset{N: 3, X: make([]float32, 3*model.NumFeatures), Y: make([]float32, 3*model.NumOutputs)}
	for i := range d.X {
		d.X[i] = rng.Float32()
	}
	for i := range d.Y {
		d.Y[i] = rng.Float32()
	}
	under := DefaultTrainConfig().weights()
	idx := []int{0, 1, 2}
	loss := func() float64 {
		var ws workspace
		ws.init(net)
		return net.accumulate(d, idx, 3, under, &ws, zeroLike(net))
	}
	g := zeroLike(net)
	var ws workspace
	ws.init(net)
	net.accumulate(d, idx, 3, under, &ws, g)
	const h = 1e-6
	for li := range net.Layers {
		for _, j := range []int{0, len(net.Layers[li].W) / 2, len(net.Layers[li].W) - 1} {
			w := &net.Layers[li].W[j]
			orig := *w
			*w = orig + h
			up := loss()
			*w = orig - h
			down := loss()
			*w = orig
			num := (up - down) / (2 * h)
			if got := g.Layers[li].W[j]; math.Abs(got-num) > 1e-5*math.Max(1, math.Abs(num)) {
				t.Errorf("layer %d weight %d: backprop %.8g, numeric %.8g", li, j, got, num)
			}
		}
	}
}

func TestParamCount(t *testing.T) {
	if got, want := ParamCount(), 1029; got != want {
		t.Fatalf("ParamCount() = %d, want %d", got, want)
	}
	if got := NewFloatMLP(rand.New(rand.NewPCG(1, 1))).Params(); got != 1029 {
		t.Fatalf("FloatMLP.Params() = %d, want 1029", got)
	}
}

// smallDataset is a learnable toy set: outputs are smooth functions of inputs.
func smallDataset(n int, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 9))
	d := &Dataset{N: n, X: make([]float32, n*model.NumFeatures), Y: make([]float32, n*model.NumOutputs), Workload: make([]int32, n)}
	for r := 0; r < n; r++ {
		x := d.X[r*model.NumFeatures : (r+1)*model.NumFeatures]
		for i := range x {
			x[i] = rng.Float32()
		}
		y := d.Y[r*model.NumOutputs : (r+1)*model.NumOutputs]
		y[0] = 0.8*x[1] + 0.1
		y[1] = 0.8*x[2] + 0.15
		y[2] = 0.7*x[4] + 0.1
		y[3] = 0.7*x[5] + 0.2
		y[4] = 1 - 0.5*x[6]
	}
	return d
}

func TestTrainIsDeterministic(t *testing.T) {
	d := smallDataset(2000, 1)
	cfg := TrainConfig{Epochs: 3, Seed: 5}
	a, err := Train(context.Background(), d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for li := range a.Quant.Layers {
		for j, q := range a.Quant.Layers[li].Q {
			if b.Quant.Layers[li].Q[j] != q {
				t.Fatalf("layer %d weight %d differs between runs with the same seed", li, j)
			}
		}
		for j, v := range a.Quant.Layers[li].Bias {
			if b.Quant.Layers[li].Bias[j] != v {
				t.Fatalf("layer %d bias %d differs between runs with the same seed", li, j)
			}
		}
	}
}

func TestTrainLearnsAndQuantizesWithLittleLoss(t *testing.T) {
	d := smallDataset(20000, 2)
	var progress []Progress
	res, err := Train(context.Background(), d, TrainConfig{Epochs: 15, Seed: 3, UnderTarget: [model.NumOutputs]float64{0, 0, 0, 1e-9, 0}},
		func(p Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) < 2 || progress[0].Phase != "training" || progress[0].Epoch != 1 {
		t.Fatalf("progress reports = %+v", progress)
	}
	test := smallDataset(5000, 99)
	qMAE := mae(res.Quant.Forward(test.X, test.N), test.Y, model.DefaultOutputs())
	fMAE := mae(res.Float.Forward(test.X, test.N), test.Y, model.DefaultOutputs())
	for name, q := range qMAE {
		if fMAE[name] > 0.08 {
			t.Errorf("%s: float MAE %.4f; the network did not learn a smooth target", name, fMAE[name])
		}
		if diff := q - fMAE[name]; diff > QuantizationAllowance(fMAE[name]) {
			t.Errorf("%s: int8 MAE %.4f vs float %.4f: quantization lost %.4f > %.4f", name, q, fMAE[name], diff, QuantizationAllowance(fMAE[name]))
		}
	}
}

func TestCalibrateMeetsTarget(t *testing.T) {
	d := smallDataset(5000, 4)
	res, err := Train(context.Background(), d, TrainConfig{Epochs: 4, Seed: 1, UnderTarget: [model.NumOutputs]float64{0, 0.2, 0, 0.02, 0}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pred := res.Quant.Forward(res.ValX, res.ValN)
	outs := model.DefaultOutputs()
	for o, target := range map[int]float64{1: 0.2, 3: 0.02} {
		under := 0
		for r := 0; r < res.ValN; r++ {
			need := outs[o].Denormalize(float64(res.ValY[r*model.NumOutputs+o])) / LabelHeadroom[o]
			// Coverage of what Predict serves: the admissible answer.
			rec := RecFromOutputs(pred[r*model.NumOutputs:(r+1)*model.NumOutputs], outs)
			if served := map[int]float64{1: rec.CPULimit, 3: rec.MemLimit}[o]; served < need {
				under++
			}
		}
		if rate := float64(under) / float64(res.ValN); rate > target {
			t.Errorf("output %s: %.4f of validation rows under their label; target %.4f", outs[o].Name, rate, target)
		}
	}
}

func TestTrainRefusesBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		d   *Dataset
		cfg TrainConfig
		err error
	}{
		"ErrTooFewRows":   {&Dataset{N: 3, X: make([]float32, 36), Y: make([]float32, 15)}, TrainConfig{}, model.ErrInvalidData},
		"ErrShapes":       {&Dataset{N: 100, X: make([]float32, 12), Y: make([]float32, 500)}, TrainConfig{}, model.ErrInvalidData},
		"ErrEpochs":       {smallDataset(100, 1), TrainConfig{Epochs: 5000}, model.ErrInvalidInput},
		"ErrLearningRate": {smallDataset(100, 1), TrainConfig{LearningRate: 2}, model.ErrInvalidInput},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Train(context.Background(), tc.d, tc.cfg, nil); !errors.Is(err, tc.err) {
				t.Fatalf("Train() error = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestTrainStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, smallDataset(1000, 1), TrainConfig{Epochs: 5}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Train() error = %v, want context.Canceled", err)
	}
}

// The overrun cost's derivative is the derivative of its value (finite
// differences), the served minimum stops both terms, and the cost of a
// limit under its label is about the price.
func TestOverrunCost(t *testing.T) {
	cfg := DefaultTrainConfigFor(2)
	lw := cfg.weights()
	outs := model.DefaultOutputs()
	norm := func(o int, v float64) float64 { return outs[o].Normalize(v) }
	label := norm(outMemLimit, 4<<30) // the following day's peak × 1.05: 4 GiB
	use := norm(outMemRequest, 2<<30) // its p90: 2 GiB
	for _, v := range []float64{3 << 30, 3.9 * (1 << 30), 4.2 * (1 << 30), 8 << 30} {
		p := norm(outMemLimit, v)
		c, g := lw.overrunCost(outMemLimit, p, label, use)
		const h = 1e-6
		c1, _ := lw.overrunCost(outMemLimit, p+h, label, use)
		c0, _ := lw.overrunCost(outMemLimit, p-h, label, use)
		if fd := (c1 - c0) / (2 * h); math.Abs(fd-g) > 1e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("limit %.1f GiB: derivative %v, finite difference %v", v/(1<<30), g, fd)
		}
		served := outs[outMemLimit].Denormalize(p)
		slack := 1 - float64(2<<30)/served + slackPull*math.Log(served/float64(2<<30))
		hinge := lw.price[outMemLimit] * overrunHinge * max(label-p, 0) / lw.width
		if c < slack || c > slack+lw.price[outMemLimit]+hinge+1e-9 {
			t.Errorf("limit %.1f GiB: cost %v; want slack %v plus at most the price %v and the hinge %v", v/(1<<30), c, slack, lw.price[outMemLimit], hinge)
		}
	}
	under, _ := lw.overrunCost(outMemLimit, norm(outMemLimit, 3<<30), label, use)
	over, _ := lw.overrunCost(outMemLimit, norm(outMemLimit, 6<<30), label, use)
	if under-over < 0.9*lw.price[outMemLimit]-0.5 {
		t.Errorf("cost under the label %v, well above it %v; want the overrun to cost about the price %v more", under, over, lw.price[outMemLimit])
	}
	// A container below the served minimum (250 MiB): the minimum covers its
	// 100 MiB peak, so a limit under the minimum costs the same and moves nowhere.
	small := norm(outMemLimit, 100<<20)
	c0, g0 := lw.overrunCost(outMemLimit, norm(outMemLimit, 50<<20), small, norm(outMemRequest, 80<<20))
	c1, g1 := lw.overrunCost(outMemLimit, norm(outMemLimit, 200<<20), small, norm(outMemRequest, 80<<20))
	if g0 != 0 || g1 != 0 || math.Abs(c0-c1) > 1e-12 {
		t.Errorf("limits under the served minimum: costs %v, %v, derivatives %v, %v; want equal costs and no gradient", c0, c1, g0, g1)
	}
}

// Trained on its scored cost, a major-2 memory limit trades slack for
// overruns as the price says: a higher price gives fewer rows under the
// following day's peak.
func TestOverrunPriceOrdersRisk(t *testing.T) {
	ctx := context.Background()
	d, err := Generate(ctx, GenConfig{Samples: 4000, Seed: 5, Major: 2})
	if err != nil {
		t.Fatal(err)
	}
	under := func(price float64) float64 {
		cfg := DefaultTrainConfigFor(2)
		cfg.Epochs, cfg.Seed = 8, 1
		cfg.OverrunPrice[outMemLimit] = price
		cfg.UnderTarget = [model.NumOutputs]float64{0, 0.1, 0, 0, 0}
		res, err := Train(ctx, d, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := res.Quant.Forward(res.ValX, res.ValN)
		n := 0
		for r := 0; r < res.ValN; r++ {
			if out[r*model.NumOutputs+outMemLimit] < res.ValY[r*model.NumOutputs+outMemLimit]-0.003 {
				n++
			}
		}
		return float64(n) / float64(res.ValN)
	}
	lo, hi := under(0.5), under(8)
	if !(hi < lo) {
		t.Fatalf("share under the label: price 0.5 → %.3f, price 8 → %.3f; want fewer under at the higher price", lo, hi)
	}
	t.Logf("share under the label: price 0.5 → %.3f, price 8 → %.3f", lo, hi)
}

// Averaging keeps the moving average of the weights: training stays
// deterministic for a seed, gives another model than the last step's
// weights, and a decay outside [0,1) is refused.
func TestWeightAveraging(t *testing.T) {
	ctx := context.Background()
	d, err := Generate(ctx, GenConfig{Samples: 2000, Seed: 3, Major: 2})
	if err != nil {
		t.Fatal(err)
	}
	train := func(decay float64) *Result {
		cfg := DefaultTrainConfigFor(2)
		cfg.Epochs, cfg.Averaging = 3, decay
		res, err := Train(ctx, d, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b, off := train(0.99), train(0.99), train(0)
	if !slices.Equal(a.Quant.Layers[0].Q, b.Quant.Layers[0].Q) || !slices.Equal(a.Quant.Layers[2].Bias, b.Quant.Layers[2].Bias) {
		t.Error("the same seed and decay gave two models")
	}
	if slices.Equal(a.Quant.Layers[0].Q, off.Quant.Layers[0].Q) {
		t.Error("averaged and last-step weights are the same model")
	}
	if a.Record.Hyper["weight_averaging"] != "0.99" {
		t.Errorf("manifest hyperparameter weight_averaging = %q; want 0.99", a.Record.Hyper["weight_averaging"])
	}
	for _, bad := range []float64{1, -0.1, math.NaN()} {
		cfg := DefaultTrainConfigFor(2)
		cfg.Averaging = bad
		if err := cfg.Validate(); !errors.Is(err, model.ErrInvalidInput) {
			t.Errorf("averaging %v: Validate = %v; want ErrInvalidInput", bad, err)
		}
	}
}

// The throttle-share cost (ThrottleShare) prices a CPU limit by the share
// of samples its labels say it throttles: 10% at the p90, 1% at the p99, a
// tenth less per p90-to-p99 span beyond, at most all of them; away from
// the slack term's kink at the p90 its derivative is that of its value.
func TestThrottleCost(t *testing.T) {
	cfg := DefaultTrainConfigFor(2)
	cfg.ThrottleShare = true
	cfg.OverrunPrice[outCPULimit] = 20
	lw := cfg.weights()
	outs := model.DefaultOutputs()
	norm := func(o int, v float64) float64 { return outs[o].Normalize(v) }
	const p90, p99 = 0.5, 2.0 // cores
	label, use := norm(outCPULimit, p99*genLimitHeadroom), norm(outCPURequest, p90)
	slack := func(v float64) float64 { return 1 - p90/v + slackPull*math.Log(v/p90) }
	for _, tc := range []struct{ limit, share float64 }{
		{p90, 0.10}, {1, 0.01 * math.Pow(10, math.Log(p99/1)/math.Log(p99/p90))}, {p99, 0.01}, {8, 0.001}, {0.05, 1},
	} {
		p := norm(outCPULimit, tc.limit)
		v := outs[outCPULimit].Denormalize(p)
		c, g := lw.throttleCost(outCPULimit, p, label, use)
		want := max(slack(max(v, minimumOf(outCPULimit))), 0) + 20*tc.share
		if v <= p90 {
			want = 20 * tc.share
		}
		if math.Abs(c-want) > 1e-3*want {
			t.Errorf("limit %v cores: cost %v; want %v (share %v)", tc.limit, c, want, tc.share)
		}
		const h = 1e-6
		c1, _ := lw.throttleCost(outCPULimit, p+h, label, use)
		c0, _ := lw.throttleCost(outCPULimit, p-h, label, use)
		if fd := (c1 - c0) / (2 * h); tc.share < 1 && math.Abs(v-p90) > 1e-3 && math.Abs(fd-g) > 1e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("limit %v cores: derivative %v, finite difference %v", tc.limit, g, fd)
		}
	}
	// Without ThrottleShare the CPU limit keeps the step.
	cfg.ThrottleShare = false
	plain := cfg.weights()
	y := make([]float32, model.NumOutputs)
	y[outCPURequest], y[outCPULimit] = float32(use), float32(label)
	p := norm(outCPULimit, 1)
	stepCost, _ := plain.rowLoss(outCPULimit, p, y)
	shareCost, _ := lw.throttleCost(outCPULimit, p, float64(y[outCPULimit]), float64(y[outCPURequest]))
	if stepCost == shareCost {
		t.Error("ThrottleShare off: the CPU limit is priced by the share; want the step")
	}
}
