package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"recommendation-api/internal/model"
)

// TrainConfig holds the training hyperparameters. Zero fields take the
// defaults of DefaultTrainConfig.
type TrainConfig struct {
	Epochs       int     // maximum epochs
	BatchSize    int     // rows per Adam step
	LearningRate float64 // Adam step size; decays by LRDecay each epoch
	LRDecay      float64
	ValFraction  float64 // share of rows held out for validation / early stopping
	Patience     int     // epochs without validation improvement before stopping
	Seed         int64
	// Workers is how many goroutines compute the fixed shards of each batch
	// (0 or more than the shard count = one per shard). The shards'
	// gradients are summed in shard order whatever Workers is, so the model
	// is the same for any value; it only bounds the CPUs training uses.
	Workers int
	// UnderWeight multiplies the squared error of an output when the model
	// predicts below the label: under-provisioning a limit costs an OOM kill
	// or throttling, over-provisioning only costs slack.
	UnderWeight [model.NumOutputs]float64
	// OutputWeight scales each output's share of the loss.
	OutputWeight [model.NumOutputs]float64
	// Quantile, when in (0,1) for an output, replaces its squared error by
	// the pinball loss of that quantile: the network then forecasts the
	// level the label stays under with that probability, a margin that
	// grows with how unpredictable each container looks (0 = squared error).
	Quantile [model.NumOutputs]float64
	// QuantileSpread lowers an output's quantile for rows whose confidence
	// label is low: quantile − spread·(1 − confidence). Predictable rows then
	// get near-certain limits for little slack, and the risk budget goes to
	// the rows where a margin would cost the most.
	QuantileSpread [model.NumOutputs]float64
	// UnderTarget is, per output, the share of validation rows allowed to fall
	// below what the label promises (mem_limit: the future peak); the last
	// layer's bias is shifted after quantization to meet it. 0 = no calibration.
	UnderTarget [model.NumOutputs]float64
	// OverrunPrice, when positive for a limit output, replaces its loss by
	// what the limit costs as scored: its relative slack over the usage its
	// request label stands for (the following window's p90), plus this price
	// times a smooth step that is 1 when the limit falls below its label
	// (an OOM kill or throttling) and 0 above it. Both terms count the served
	// minimums (model.Admissible). A network trained so spends its margin
	// where it buys the most slack per overrun avoided, instead of giving
	// every row the same quantile.
	OverrunPrice [model.NumOutputs]float64
	// ThrottleShare, with a positive OverrunPrice for the CPU limit, makes
	// that limit's overrun term the price times the share of the following
	// window's samples above the limit — what throttling is scored as —
	// instead of a step at the window's p99: the share is read off the
	// row's labels, 10% at the p90 (the request's label) and 1% at the p99,
	// log-linear in the limit between and beyond them (at most 1). A step
	// prices a limit just under the p99 (1–2% of samples throttled) like
	// one at the median (50%), so it buys cover for bursty rows at any
	// slack; the share weighs each row's throttling as it is scored.
	ThrottleShare bool
	// SplitTowers trains two networks of the shared one's widths side by
	// side in one graph, one for the CPU outputs and one for the memory
	// outputs and the confidence (towers.go): no hidden unit serves both,
	// and each keeps its own best epoch, so the price set on one resource
	// costs the other nothing.
	SplitTowers bool
	// Ensemble, above 1, trains that many networks on the same split, each
	// from its own initial weights and shuffles, and serves their mean as
	// one network whose hidden layers hold them side by side (stack): a
	// seed's luck averages out. The mean is of the last layer's values
	// before its activation (major 1's clip to [0,1]) and before the head
	// (major 2's offsets and headroom), which apply once, to the mean.
	// 0 or 1 = one network.
	Ensemble int
	// SeparateCPU trains two networks of the shared one's widths on the
	// same split, each from the generator state a network trained alone
	// would start from, and serves them side by side in one graph (stack):
	// the CPU outputs of one trained with this config, the memory outputs
	// and the confidence of one trained with the major's default CPU
	// settings (memoryConfig). Each is the whole multi-output network it
	// would be alone — its hidden layers learn from every output, as a
	// shared network's do — so a CPU setting that costs the memory outputs
	// in a shared network (ThrottleShare) buys its CPU limits and leaves
	// the memory limits exactly as without it.
	SeparateCPU bool
	// OverrunWidth is the width of that step in normalized output units
	// (0 = 0.01, about 10% of the limit).
	OverrunWidth float64
	// Averaging, in (0,1), keeps an exponential moving average of the
	// weights with this decay per step and validates, keeps and quantizes
	// the average instead of the last step's weights: the model then
	// depends less on where the last batches happened to leave it (0 = off).
	Averaging float64
}

// DefaultTrainConfig returns the defaults used by the CLI and training jobs.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Epochs:         30,
		BatchSize:      256,
		LearningRate:   1e-2,
		LRDecay:        0.95,
		ValFraction:    0.1,
		Patience:       5,
		Seed:           1,
		UnderWeight:    [model.NumOutputs]float64{2, 4, 2, 8, 1},
		OutputWeight:   [model.NumOutputs]float64{1, 1, 1, 1, 0.05},
		Quantile:       [model.NumOutputs]float64{0, 0.9, 0, 0.99, 0},
		QuantileSpread: [model.NumOutputs]float64{0, 0.5, 0, 0.6, 0},
		UnderTarget:    [model.NumOutputs]float64{0, 0.5, 0, 0.065, 0},
	}
}

// DefaultTrainConfigFor returns the defaults of train and of training
// jobs for a major; every major has the same recipe. It trains the limits
// on the scored cost instead of DefaultTrainConfig's quantiles
// (OverrunPrice: an OOM day costs as much as a fully slack memory limit, a
// throttled day twice a fully slack CPU limit), then calibrates them to
// leave at most 2.5% of validation rows under the following day's memory
// peak and 10% under its CPU p99; it keeps the moving average of its
// weights (decay 0.999 per step); its learning rate is 3e-3: at 1e-2 the
// cost's step sends some seeds' networks up the loss in the second epoch
// and leaves them dead (3 of 8 seeds of make pipeline-seeds). On the
// held-out Bitbrains VMs (7-day
// history) the pinball-trained network left 74–76% memory slack at VPA's
// OOM rate, the cost-trained one 66–70% (docs/model.md); on the synthetic
// pipeline's held-out set a major-1 network trained so OOMs on 2.4% of
// rows against the pinball one's 6.1% (make pipeline-seeds).
func DefaultTrainConfigFor(major int) TrainConfig {
	c := DefaultTrainConfig()
	if major >= 1 {
		c.OverrunPrice[outCPULimit], c.OverrunPrice[outMemLimit] = 2, 1
		c.UnderTarget = [model.NumOutputs]float64{0, 0.1, 0, 0.025, 0}
		c.Averaging = 0.999
		c.LearningRate = 3e-3
	}
	return c
}

// members is how many networks Ensemble trains.
func (c TrainConfig) members() int { return max(c.Ensemble, 1) }

// overrunWidth is OverrunWidth's default.
const overrunWidth = 0.01

// slackPull weighs the log-slack term of the overrun cost, overrunHinge
// its hinge below the label (per OverrunWidth).
const (
	slackPull    = 0.02
	overrunHinge = 0.05
)

func (c TrainConfig) overrunWidth() float64 {
	if c.OverrunWidth > 0 {
		return c.OverrunWidth
	}
	return overrunWidth
}

func (c TrainConfig) withDefaults() TrainConfig {
	d := DefaultTrainConfig()
	if c.Epochs <= 0 {
		c.Epochs = d.Epochs
	}
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	if c.LearningRate <= 0 {
		c.LearningRate = d.LearningRate
	}
	if c.LRDecay <= 0 {
		c.LRDecay = d.LRDecay
	}
	if c.ValFraction <= 0 {
		c.ValFraction = d.ValFraction
	}
	if c.Patience <= 0 {
		c.Patience = d.Patience
	}
	if c.UnderWeight == ([model.NumOutputs]float64{}) {
		c.UnderWeight = d.UnderWeight
	}
	if c.OutputWeight == ([model.NumOutputs]float64{}) {
		c.OutputWeight = d.OutputWeight
	}
	if c.Quantile == ([model.NumOutputs]float64{}) {
		c.Quantile, c.QuantileSpread = d.Quantile, d.QuantileSpread
	}
	if c.UnderTarget == ([model.NumOutputs]float64{}) {
		c.UnderTarget = d.UnderTarget
	}
	return c
}

// Validate reports hyperparameters outside sane bounds.
func (c TrainConfig) Validate() error {
	switch {
	case c.Epochs < 0 || c.Epochs > 1000:
		return fmt.Errorf("%w: epochs %d; want 1..1000", model.ErrInvalidInput, c.Epochs)
	case c.BatchSize < 0 || c.BatchSize > 65536:
		return fmt.Errorf("%w: batch size %d; want 1..65536", model.ErrInvalidInput, c.BatchSize)
	case c.LearningRate < 0 || c.LearningRate > 1 || math.IsNaN(c.LearningRate):
		return fmt.Errorf("%w: learning rate %v; want (0, 1]", model.ErrInvalidInput, c.LearningRate)
	case c.ValFraction < 0 || c.ValFraction >= 0.5 || math.IsNaN(c.ValFraction):
		return fmt.Errorf("%w: validation fraction %v; want (0, 0.5)", model.ErrInvalidInput, c.ValFraction)
	case c.Averaging < 0 || c.Averaging >= 1 || math.IsNaN(c.Averaging):
		return fmt.Errorf("%w: weight averaging %v; want 0 (off) or a decay in (0, 1)", model.ErrInvalidInput, c.Averaging)
	case c.OverrunWidth < 0 || c.OverrunWidth > 1 || math.IsNaN(c.OverrunWidth):
		return fmt.Errorf("%w: overrun width %v; want 0 (the default) to 1", model.ErrInvalidInput, c.OverrunWidth)
	case c.Ensemble < 0 || c.Ensemble > 16:
		return fmt.Errorf("%w: ensemble of %d; want 0 or 1 (one network) to 16", model.ErrInvalidInput, c.Ensemble)
	case c.SeparateCPU && (c.SplitTowers || c.members() > 1):
		return fmt.Errorf("%w: a separate CPU network with split towers or an ensemble; want one of them", model.ErrInvalidInput)
	case c.Workers < 0:
		return fmt.Errorf("%w: %d workers; want 0 (one per shard) or more", model.ErrInvalidInput, c.Workers)
	}
	return nil
}

// Hyper returns the hyperparameters as strings for the manifest.
func (c TrainConfig) Hyper() map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	arr := func(a [model.NumOutputs]float64) string {
		s := ""
		for i, v := range a {
			if i > 0 {
				s += ","
			}
			s += f(v)
		}
		return s
	}
	h := map[string]string{
		"optimizer":        "adam(beta1=0.9,beta2=0.999,eps=1e-8)",
		"loss":             "pinball loss for outputs with a quantile in (0,1), else squared error weighted by under_weight below the label; normalized outputs",
		"batch_size":       strconv.Itoa(c.BatchSize),
		"learning_rate":    f(c.LearningRate),
		"lr_decay":         f(c.LRDecay),
		"val_fraction":     f(c.ValFraction),
		"patience":         strconv.Itoa(c.Patience),
		"under_weight":     arr(c.UnderWeight),
		"under_target":     arr(c.UnderTarget),
		"output_weight":    arr(c.OutputWeight),
		"quantile":         arr(c.Quantile),
		"quantile_spread":  arr(c.QuantileSpread),
		"overrun_price":    arr(c.OverrunPrice),
		"overrun_width":    f(c.overrunWidth()),
		"weight_averaging": f(c.Averaging),
		"max_epochs":       strconv.Itoa(c.Epochs),
		"initialization":   "he-normal",
	}
	if c.ThrottleShare && c.OverrunPrice[outCPULimit] > 0 { // only then is the price per throttled share
		h["throttle_share"] = "true"
	}
	if c.members() > 1 {
		h["ensemble"] = strconv.Itoa(c.members()) + " networks on one split, their last layers averaged"
	}
	if c.SeparateCPU {
		h["cpu_network"] = "separate: cpu_request and cpu_limit from a network trained with these settings, mem_request, mem_limit and confidence from one trained on the same split with the major's default CPU settings, side by side"
	}
	if c.SplitTowers {
		h["towers"] = "split: cpu_request and cpu_limit | mem_request, mem_limit and confidence; no weight between them, each tower's best epoch kept"
	}
	return h
}

// Progress is reported after every epoch (and once per phase change).
type Progress struct {
	Phase     string // "training", "quantizing", "calibrating"
	Epoch     int    // 1-based
	Epochs    int    // maximum
	TrainLoss float64
	ValLoss   float64
	BestEpoch int
	Elapsed   time.Duration
	Remaining time.Duration // estimate, assuming all epochs run
}

// Result is a trained model: the float twin and the served int8 model.
type Result struct {
	Major     int // the model major (I/O format) trained
	Float     *FloatMLP
	Quant     *model.QuantizedMLP
	Config    TrainConfig
	Record    model.Training
	Shift     [model.NumOutputs]float64 // logit shifts applied by calibration
	ValX      []float32                 // the validation rows (n×width), for golden rows
	ValY      []float32
	ValN      int
	TrainLoss float64
}

// shards is fixed so gradients sum in the same order whatever GOMAXPROCS is:
// training is deterministic for a seed.
const shards = 4

// Train fits the network to d, quantizes it and calibrates the limits. It
// checks ctx between batches and returns ctx.Err() when cancelled.
func Train(ctx context.Context, d *Dataset, cfg TrainConfig, progress func(Progress)) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d == nil || d.N < 20 || len(d.X) != d.N*d.FeatureWidth() || len(d.Y) != d.N*model.NumOutputs {
		return nil, fmt.Errorf("%w: need at least 20 rows with X n×(a major's feature count) and Y n×%d", model.ErrInvalidData, model.NumOutputs)
	}
	major, err := d.Major()
	if err != nil {
		return nil, err
	}
	width := d.FeatureWidth()
	if progress == nil {
		progress = func(Progress) {}
	}
	start := time.Now()
	src := rand.NewPCG(uint64(cfg.Seed), 0x7261696e)
	rng := rand.New(src)

	// Split: a seeded permutation, the first ValFraction for validation.
	perm := rng.Perm(d.N)
	nVal := max(1, int(float64(d.N)*cfg.ValFraction))
	valIdx, trainIdx := perm[:nVal], perm[nVal:]
	valX, valY := gather(d.X, valIdx, width), gather(d.Y, valIdx, model.NumOutputs)

	// Each member of an ensemble sees the same split; the first goes on with
	// the split's generator (so one member is the network Train has always
	// made), the others start from their own. A separate CPU network's two
	// members both go on from the split's generator, each from a copy of
	// it, so each is the network its config trains alone.
	members := cfg.members()
	configs := []TrainConfig{cfg}
	if cfg.SeparateCPU {
		members = 2
		configs = make([]TrainConfig, 2)
		configs[towerCPU], configs[towerMem] = cfg, memoryConfig(cfg, major)
	}
	splitState := *src
	fits := make([]fitted, members)
	var last Progress // the last epoch reported: the quantizing report counts as it did
	for k := range fits {
		mcfg, mrng := cfg, rng
		switch {
		case cfg.SeparateCPU:
			state := splitState
			mcfg, mrng = configs[k], rand.New(&state)
		case k > 0:
			mrng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7261696e+uint64(k)))
		}
		f, err := fit(ctx, d, mcfg, major, append([]int(nil), trainIdx...), valX, valY, nVal, mrng, func(p Progress) {
			p.Epoch += k * cfg.Epochs
			p.BestEpoch += k * cfg.Epochs
			p.Epochs *= members
			p.Elapsed = time.Since(start)
			done := float64(p.Epoch) / float64(p.Epochs)
			p.Remaining = time.Duration(float64(p.Elapsed) * (1 - done) / max(done, 1e-9))
			last = p
			progress(p)
		})
		if err != nil {
			return nil, err
		}
		fits[k] = f
	}
	best, rec := fits[0].net, fits[0]
	if members > 1 {
		nets := make([]*FloatMLP, members)
		for k, f := range fits {
			nets[k] = f.net
			rec.epochsRun, rec.bestEpoch = max(rec.epochsRun, f.epochsRun), max(rec.bestEpoch, f.bestEpoch)
		}
		serve := everyMember
		if cfg.SeparateCPU {
			serve = byTower
		}
		best = stack(nets, serve)
		rec.bestLoss = lossOn(best, valX, valY, nVal, cfg.weights())
		rec.trainLoss = 0
		for _, f := range fits {
			rec.trainLoss += f.trainLoss / float64(members)
		}
	}
	progress(Progress{Phase: "quantizing", Epoch: last.Epoch, Epochs: last.Epochs, ValLoss: rec.bestLoss, BestEpoch: last.BestEpoch, Elapsed: time.Since(start)})
	q := Quantize(best)
	shift := Calibrate(q, valX, valY, nVal, cfg.UnderTarget)
	for o, s := range shift { // fold the calibration into the float twin too
		best.Layers[len(best.Layers)-1].B[o] += s
	}
	hyper := cfg.Hyper()
	var memberEpochs, towerEpochs []string
	for _, f := range fits {
		memberEpochs = append(memberEpochs, strconv.Itoa(f.bestEpoch))
		towerEpochs = append(towerEpochs, fmt.Sprintf("%d/%d", f.towerEpochs[towerCPU], f.towerEpochs[towerMem]))
	}
	switch {
	case cfg.SeparateCPU: // CPU/memory
		hyper["cpu_network_best_epochs"] = strings.Join(memberEpochs, "/")
	case members > 1:
		hyper["ensemble_best_epochs"] = strings.Join(memberEpochs, ",")
	}
	if cfg.SplitTowers { // CPU/memory, per member
		hyper["tower_best_epochs"] = strings.Join(towerEpochs, ",")
	}
	return &Result{
		Major: major, Float: best, Quant: q, Config: cfg, Shift: shift,
		ValX: valX, ValY: valY, ValN: nVal, TrainLoss: rec.trainLoss,
		Record: model.Training{
			Samples: d.N, TrainSamples: len(trainIdx), ValSamples: nVal, Seed: cfg.Seed,
			Epochs: cfg.Epochs, EpochsRun: rec.epochsRun, BestEpoch: rec.bestEpoch, Hyper: hyper,
			DurationMS: time.Since(start).Milliseconds(), TrainLoss: rec.trainLoss, ValLoss: rec.bestLoss,
		},
	}, nil
}

// fitted is one network fit returns, with its training record.
type fitted struct {
	net                  *FloatMLP
	bestLoss, trainLoss  float64
	bestEpoch, epochsRun int
	towerEpochs          [2]int // SplitTowers: each tower's best epoch (CPU, memory)
}

// fit trains one float network on the rows trainIdx (shuffled in place)
// with early stopping on the validation rows, drawing its initial weights
// and its shuffles from rng, and returns the weights of its best epoch.
func fit(ctx context.Context, d *Dataset, cfg TrainConfig, major int, trainIdx []int, valX, valY []float32, nVal int, rng *rand.Rand, progress func(Progress)) (fitted, error) {
	start := time.Now()
	var split *towers
	var net *FloatMLP
	var err error
	if cfg.SplitTowers {
		if net, err = newFloatMLP(rng, major, 2); err == nil {
			split = newTowers(net)
			split.init(net)
		}
	} else {
		net, err = NewFloatMLPFor(rng, major)
	}
	if err != nil {
		return fitted{}, err
	}
	opt := newAdam(net, cfg.LearningRate)
	grads := make([]*FloatMLP, shards)
	wss := make([]workspace, shards)
	losses := make([]float64, shards)
	for i := range grads {
		grads[i] = zeroLike(net)
		wss[i].init(net)
	}
	workers := cfg.Workers
	if workers <= 0 || workers > shards {
		workers = shards
	}
	var avg *FloatMLP // the moving average of the weights (Averaging)
	if cfg.Averaging > 0 {
		avg = net.Clone()
	}
	best, bestLoss, bestEpoch, trainLoss := net.Clone(), math.Inf(1), 0, 0.0
	// Each tower's own best epoch and stop; a shared network is one tower.
	keep := newKeeper(1, cfg.Patience, func(_ int, cur *FloatMLP) { best = cur.Clone() })
	if split != nil {
		keep = newKeeper(2, cfg.Patience, func(k int, cur *FloatMLP) { split.copyTower(best, cur, k) })
	}
	epochsRun := 0
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		epochsRun = epoch
		rng.Shuffle(len(trainIdx), func(i, j int) { trainIdx[i], trainIdx[j] = trainIdx[j], trainIdx[i] })
		sum := 0.0
		for b := 0; b < len(trainIdx); b += cfg.BatchSize {
			if err := ctx.Err(); err != nil {
				return fitted{}, err
			}
			batch := trainIdx[b:min(b+cfg.BatchSize, len(trainIdx))]
			shard := func(s int) {
				lo, hi := len(batch)*s/shards, len(batch)*(s+1)/shards
				losses[s] = net.accumulate(d, batch[lo:hi], len(batch), cfg.weights(), &wss[s], grads[s])
			}
			if workers == 1 {
				for s := range shards {
					shard(s)
				}
			} else {
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for s := w; s < shards; s += workers {
							shard(s)
						}
					})
				}
				wg.Wait()
			}
			for s := 1; s < shards; s++ {
				addInto(grads[0], grads[s])
			}
			for s := 0; s < shards; s++ {
				sum += losses[s] * float64(len(batch)*(s+1)/shards-len(batch)*s/shards)
			}
			opt.step(net, grads[0])
			if split != nil {
				split.cut(net)
			}
			if avg != nil {
				blend(avg, net, cfg.Averaging)
			}
			for s := 0; s < shards; s++ {
				zeroGrad(grads[s])
			}
		}
		trainLoss = sum / float64(len(trainIdx))
		cur := net
		if avg != nil {
			cur = avg
		}
		var losses []float64
		if split == nil {
			losses = []float64{lossOn(cur, valX, valY, nVal, cfg.weights())}
		} else {
			tl := lossByTower(cur, valX, valY, nVal, cfg.weights())
			losses = tl[:]
		}
		keep.observe(epoch, losses, cur)
		valLoss := 0.0
		for _, l := range losses {
			valLoss += l
		}
		bestLoss, bestEpoch = keep.best()
		opt.lr *= cfg.LRDecay
		elapsed := time.Since(start)
		progress(Progress{Phase: "training", Epoch: epoch, Epochs: cfg.Epochs, TrainLoss: trainLoss, ValLoss: valLoss,
			BestEpoch: bestEpoch, Elapsed: elapsed, Remaining: elapsed / time.Duration(epoch) * time.Duration(cfg.Epochs-epoch)})
		if keep.done() {
			break
		}
	}
	f := fitted{net: best, bestLoss: bestLoss, trainLoss: trainLoss, bestEpoch: bestEpoch, epochsRun: epochsRun}
	if split != nil {
		f.towerEpochs = [2]int(keep.epoch)
	}
	return f, nil
}

// memoryConfig is the config of a separate CPU network's memory member:
// cfg with the major's default CPU limit cost.
func memoryConfig(cfg TrainConfig, major int) TrainConfig {
	cfg.SeparateCPU, cfg.ThrottleShare = false, false
	cfg.OverrunPrice[outCPULimit] = DefaultTrainConfigFor(major).OverrunPrice[outCPULimit]
	return cfg
}

// everyMember is stack's choice for an ensemble: every output is the
// members' mean.
func everyMember(int, int) bool { return true }

// byTower is stack's choice for a separate CPU network (nets indexed by
// tower): each output is its tower's member's alone.
func byTower(n, o int) bool { return n == outputTower(o) }

// stack returns one network whose last-layer values, before the last
// activation and the head (which then apply once), are for each output o
// the mean of the values of the nets n that serve(n, o): their hidden
// layers side by side, each reading only its own units. With everyMember
// it is an ensemble's mean; with byTower each output is one member's.
// nets share their widths, activations and head.
func stack(nets []*FloatMLP, serve func(n, o int) bool) *FloatMLP {
	s := &FloatMLP{Head: nets[0].Head}
	last := len(nets[0].Layers) - 1
	servers := make([]float64, nets[0].Layers[last].Out) // how many nets serve each output
	for o := range servers {
		for n := range nets {
			if serve(n, o) {
				servers[o]++
			}
		}
	}
	servedShare := func(v float64, n, o int) float64 { // v over the count of nets serving o, or 0
		if !serve(n, o) {
			return 0
		}
		return v / servers[o]
	}
	for li, l0 := range nets[0].Layers {
		in, out := l0.In, l0.Out*len(nets)
		if li > 0 {
			in *= len(nets)
		}
		if li == last {
			out = l0.Out
		}
		l := FloatLayer{In: in, Out: out, W: make([]float64, in*out), B: make([]float64, out), Activation: l0.Activation}
		for n, net := range nets {
			src := net.Layers[li]
			inOff, outOff := n*src.In, n*src.Out
			if li == 0 {
				inOff = 0
			}
			if li == last {
				outOff = 0
			}
			for i := 0; i < src.In; i++ {
				for o := 0; o < src.Out; o++ {
					w := src.W[i*src.Out+o]
					if li == last {
						w = servedShare(w, n, o)
					}
					l.W[(inOff+i)*out+outOff+o] = w
				}
			}
			for o, b := range src.B {
				if li == last {
					l.B[o] += servedShare(b, n, o)
				} else {
					l.B[outOff+o] = b
				}
			}
		}
		s.Layers = append(s.Layers, l)
	}
	return s
}

// accumulate runs the rows idx through the network, adds their loss
// gradient (scaled by 1/batch) into g and returns their mean loss.
func (m *FloatMLP) accumulate(d *Dataset, idx []int, batch int, lw lossWeights, ws *workspace, g *FloatMLP) float64 {
	var dOut [model.NumOutputs]float64
	loss := 0.0
	for _, r := range idx {
		w := m.InputWidth()
		out := m.forwardRow(d.X[r*w:(r+1)*w], ws)
		y := d.Y[r*model.NumOutputs : (r+1)*model.NumOutputs]
		for o, p := range out {
			l, d := lw.rowLoss(o, p, y)
			loss += l
			dOut[o] = d / float64(batch)
		}
		m.headBackward(dOut[:], ws)
		m.backwardRow(dOut[:], ws, g)
	}
	if len(idx) == 0 {
		return 0
	}
	return loss / float64(len(idx))
}

// lossWeights are the squared-error weights per output when the
// prediction is above (over) or below (under) the label.
type lossWeights struct {
	over, under, quantile, spread, price [model.NumOutputs]float64
	width                                float64
	throttleShare                        bool
	outs                                 [model.NumOutputs]model.Denormalizer
}

func (c TrainConfig) weights() lossWeights {
	var lw lossWeights
	for o := range lw.over {
		lw.over[o] = c.OutputWeight[o]
		lw.under[o] = c.OutputWeight[o] * c.UnderWeight[o]
		lw.quantile[o] = c.Quantile[o]
		lw.spread[o] = c.QuantileSpread[o]
		lw.price[o] = c.OverrunPrice[o]
	}
	lw.width = c.overrunWidth()
	lw.throttleShare = c.ThrottleShare
	for o, s := range model.DefaultOutputs() {
		lw.outs[o] = s.Denormalizer()
	}
	return lw
}

// rowLoss is output o's loss for prediction p of a row whose labels are y,
// and its derivative with respect to p: the overrun cost for a limit with
// a price (OverrunPrice), loss otherwise.
func (lw *lossWeights) rowLoss(o int, p float64, y []float32) (float64, float64) {
	if lw.price[o] > 0 && o == outCPULimit && lw.throttleShare {
		return lw.throttleCost(o, p, float64(y[o]), float64(y[o-1]))
	}
	if lw.price[o] > 0 && (o == outCPULimit || o == outMemLimit) {
		return lw.overrunCost(o, p, float64(y[o]), float64(y[o-1]))
	}
	return lw.loss(o, p-float64(y[o]), float64(y[model.NumOutputs-1]))
}

// slackCost is the slack term both overrun costs of limit o start from,
// at normalized value p over the usage its request label use stands for:
// relative slack (v − usage)/v of the served value v = max(limit, minimum)
// plus a small log-slack pull, and its derivative with respect to p. It
// also returns the limit v, the served value and the served minimum.
func (lw *lossWeights) slackCost(o int, p, use float64) (cost, grad, v, served, floor float64) {
	v = lw.outs[o].Denormalize(p)
	floor = minimumOf(o)
	served = max(v, floor)
	u := lw.outs[o-1].Denormalize(use)
	if served > u {
		// Relative slack saturates at 1: far above the usage it stops
		// pulling the limit down, and a network can settle on limits far
		// too large for every row. A small log-slack term keeps the pull.
		cost = 1 - u/served + slackPull*math.Log(served/u)
		if v > floor && p > 0 && p < 1 {
			// d(1 − u/v + k·ln(v/u))/dp = (u/v² + k/v) · dv/dp.
			grad = (u/(v*v) + slackPull/v) * lw.outs[o].Slope(p)
		}
	}
	return cost, grad, v, served, floor
}

// overrunCost is the scored cost of limit o at normalized value p against
// its label label (normalized) and the usage level use (the request's
// label, normalized): relative slack (v − usage)/v of the served value v =
// max(limit, minimum), plus price × σ((label − p)/width), and its
// derivative with respect to p. Below the served minimum the limit does not
// change what is served, so neither term moves it.
func (lw *lossWeights) overrunCost(o int, p, label, use float64) (float64, float64) {
	cost, grad, v, served, floor := lw.slackCost(o, p, use)
	z := (label - p) / lw.width
	sig := 1 / (1 + math.Exp(-z))
	covered := served >= lw.outs[o].Denormalize(label) && v <= floor // the minimum covers the label
	if covered {
		sig = 0
	}
	cost += lw.price[o] * sig
	if v > floor || sig > 0 {
		grad -= lw.price[o] * sig * (1 - sig) / lw.width
	}
	// Far below its label the step is flat; a small hinge still says which
	// way to move, so a limit that starts (or strays) far under the usage
	// it must cover comes back.
	if z > 0 && !covered {
		cost += lw.price[o] * overrunHinge * z
		grad -= lw.price[o] * overrunHinge / lw.width
	}
	return cost, grad
}

// throttleCost is overrunCost with the step replaced by the estimated
// share of the following window's samples above the limit (ThrottleShare):
// with a = ln p90 (the request's label use), b = ln p99 (the limit's label
// without its headroom) and t = ln of the served limit, share =
// min(1, 0.01 · 10^(−(t − b)/d)), d = max(b − a, minShareSpan): 10% at the
// p90, 1% at the p99, a tenth less per d beyond. It returns the cost and
// its derivative with respect to p.
func (lw *lossWeights) throttleCost(o int, p, label, use float64) (float64, float64) {
	cost, grad, v, served, floor := lw.slackCost(o, p, use)
	u := lw.outs[o-1].Denormalize(use)
	a := math.Log(max(u, 1e-9))
	b := math.Log(max(lw.outs[o].Denormalize(label)/genLimitHeadroom, 1e-9))
	d := max(b-a, minShareSpan)
	share := 0.01 * math.Exp(-math.Ln10*(math.Log(served)-b)/d)
	if share >= 1 {
		return cost + lw.price[o], grad
	}
	cost += lw.price[o] * share
	if v > floor && p > 0 && p < 1 {
		// d share/dp = −share · ln 10 / d · (1/v) · dv/dp.
		grad -= lw.price[o] * share * math.Ln10 / d / v * lw.outs[o].Slope(p)
	}
	return cost, grad
}

// minShareSpan bounds the log distance between p90 and p99 that
// throttleCost's share falls a tenth over, for rows whose CPU is so steady
// that the two nearly meet.
const minShareSpan = 0.05

// loss returns output o's loss for the error e = prediction − label, and
// its derivative with respect to the prediction. conf is the row's
// confidence label.
func (lw *lossWeights) loss(o int, e, conf float64) (float64, float64) {
	if q := lw.quantile[o]; q > 0 && q < 1 { // pinball, scaled to squared error's size near 0.1
		q = min(max(q-lw.spread[o]*(1-conf), 0.5), 0.999)
		const k = 0.2
		if e < 0 {
			return -k * q * e * lw.over[o], -k * q * lw.over[o]
		}
		return k * (1 - q) * e * lw.over[o], k * (1 - q) * lw.over[o]
	}
	w := lw.over[o]
	if e < 0 {
		w = lw.under[o]
	}
	return w * e * e, 2 * w * e
}

// lossOn is the mean asymmetric loss of m on n rows.
func lossOn(m *FloatMLP, x, y []float32, n int, lw lossWeights) float64 {
	loss := 0.0
	eachLoss(m, x, y, n, lw, func(_ int, l float64) { loss += l })
	return loss / float64(n)
}

// eachLoss runs n rows through m and calls add with every output's loss,
// row by row, outputs in order.
func eachLoss(m *FloatMLP, x, y []float32, n int, lw lossWeights, add func(o int, l float64)) {
	for i, v := range m.Forward(x, n) {
		row, o := i/model.NumOutputs, i%model.NumOutputs
		l, _ := lw.rowLoss(o, float64(v), y[row*model.NumOutputs:(row+1)*model.NumOutputs])
		add(o, l)
	}
}

func gather(src []float32, idx []int, width int) []float32 {
	out := make([]float32, 0, len(idx)*width)
	for _, i := range idx {
		out = append(out, src[i*width:(i+1)*width]...)
	}
	return out
}

// blend moves avg towards net: avg = decay·avg + (1−decay)·net.
func blend(avg, net *FloatMLP, decay float64) {
	for i := range avg.Layers {
		a, n := avg.Layers[i], net.Layers[i]
		for j, v := range n.W {
			a.W[j] = decay*a.W[j] + (1-decay)*v
		}
		for j, v := range n.B {
			a.B[j] = decay*a.B[j] + (1-decay)*v
		}
	}
}

func addInto(dst, src *FloatMLP) {
	for i := range dst.Layers {
		for j, v := range src.Layers[i].W {
			dst.Layers[i].W[j] += v
		}
		for j, v := range src.Layers[i].B {
			dst.Layers[i].B[j] += v
		}
	}
}

func zeroGrad(g *FloatMLP) {
	for i := range g.Layers {
		for j := range g.Layers[i].W {
			g.Layers[i].W[j] = 0
		}
		for j := range g.Layers[i].B {
			g.Layers[i].B[j] = 0
		}
	}
}

// adam is the Adam optimizer's state.
type adam struct {
	lr, b1, b2, eps float64
	t               int
	m, v            *FloatMLP
}

func newAdam(net *FloatMLP, lr float64) *adam {
	return &adam{lr: lr, b1: 0.9, b2: 0.999, eps: 1e-8, m: zeroLike(net), v: zeroLike(net)}
}

func (a *adam) step(net, g *FloatMLP) {
	a.t++
	c1 := 1 - math.Pow(a.b1, float64(a.t))
	c2 := 1 - math.Pow(a.b2, float64(a.t))
	upd := func(p, g, m, v []float64) {
		for i := range p {
			m[i] = a.b1*m[i] + (1-a.b1)*g[i]
			v[i] = a.b2*v[i] + (1-a.b2)*g[i]*g[i]
			p[i] -= a.lr * (m[i] / c1) / (math.Sqrt(v[i]/c2) + a.eps)
		}
	}
	for i := range net.Layers {
		upd(net.Layers[i].W, g.Layers[i].W, a.m.Layers[i].W, a.v.Layers[i].W)
		upd(net.Layers[i].B, g.Layers[i].B, a.m.Layers[i].B, a.v.Layers[i].B)
	}
}
