package traces

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

// Recommender names in reports, in report order.
const (
	NameModel = "model"
	// NameVPAUpper is VPA with its upper bound as the limit (request =
	// target): the safe deployment.
	NameVPAUpper = "vpa-upper-bound"
	// NameVPATarget is VPA in RequestsAndLimits mode on pods whose limit
	// equals their request: request = limit = target.
	NameVPATarget   = "vpa-target"
	NameKRR         = "krr-simple"
	NameProvisioned = "provisioned"
)

// Containers says which containers Evaluate scores.
type Containers int

const (
	// HeldOutContainers scores only the containers HeldOut keeps out of
	// training data: the only honest test set for a model trained by
	// Dataset. The default.
	HeldOutContainers Containers = iota
	// AllContainers scores every container. Evaluate refuses it with a
	// model: it is for the baselines alone, which learn nothing.
	AllContainers
	// TuningContainers scores only the Tuning containers: for a model
	// trained without them (generate-data --tuning-holdout), whose
	// settings are being chosen without looking at the held-out ones.
	TuningContainers
)

// ParseContainers reads a --containers value, one of accepted's names; the
// error lists them.
func ParseContainers(s string, accepted ...Containers) (Containers, error) {
	names := make([]string, len(accepted))
	for i, c := range accepted {
		if c.String() == s {
			return c, nil
		}
		names[i] = c.String()
	}
	want := names[len(names)-1]
	if len(names) > 1 {
		want = strings.Join(names[:len(names)-1], ", ") + " or " + want
	}
	return 0, fmt.Errorf("--containers %q; want %s", s, want)
}

// String is the name --containers (and the report's "containers") gives c.
func (c Containers) String() string {
	switch c {
	case AllContainers:
		return "all"
	case TuningContainers:
		return "tuning"
	}
	return "held-out"
}

// scores reports whether c includes the container named id.
func (c Containers) scores(id string) bool {
	switch c {
	case AllContainers:
		return true
	case TuningContainers:
		return Tuning(id)
	}
	return HeldOut(id)
}

// Config configures Evaluate.
type Config struct {
	// Windows cut each series into points; History is what VPA and KRR
	// see (VPA at most trainer.VPAMaxHistory of it).
	Windows Windows
	// ModelHistory is how many of the history's last steps the model's
	// features read: the window its manifest's features assume (0: the
	// generator's 48 h, trainer.DefaultHistorySteps at trainer.Step). It
	// may not exceed Windows.History.
	ModelHistory int
	// Containers selects the containers scored (default held-out only).
	Containers Containers
	// VPASamplesPerRow is trainer.VPAOptions.SamplesPerRow: 0 counts a
	// history row as the one-minute samples a running recommender takes
	// over its step, 1 as one sample.
	VPASamplesPerRow float64
	// Features and Outputs are the model's manifest specs: features are
	// normalized with the former, outputs denormalized with the latter.
	Features, Outputs []model.Spec
	// Predict runs n×12 normalized rows through the model (ONNX Runtime in
	// the CLI); nil leaves the model out of the report.
	Predict trainer.PredictFunc
	// Recommend, instead of Predict, asks a running server for the model's
	// recommendations from raw features (its raw-metrics path), in the
	// order given; ids name the containers.
	Recommend func(ctx context.Context, ids []string, raws []features.Raw) ([]trainer.Rec, error)
	// Model names the model in the report (e.g. "v1.0.0 (embedded)").
	Model string
	// PerDay keeps every container-day's recommendations and scores.
	PerDay bool
}

// Report is the outcome of replaying traces with one history length.
type Report struct {
	Model        string  `json:"model,omitempty"`
	StepSeconds  int     `json:"step_seconds"`
	HistorySteps int     `json:"history_steps"`
	HistoryDays  float64 `json:"history_days"`
	// ModelHistorySteps is the part of the history the model's features read.
	ModelHistorySteps int    `json:"model_history_steps,omitempty"`
	FutureSteps       int    `json:"future_steps"`
	StrideSteps       int    `json:"stride_steps"`
	Containers        string `json:"containers_scored"` // "held-out", "tuning" or "all"
	// VPASamplesPerRow is Config.VPASamplesPerRow (0: one a minute).
	VPASamplesPerRow float64 `json:"vpa_samples_per_row"`
	Series           int     `json:"series"`          // containers read
	HeldOutSeries    int     `json:"held_out_series"` // of them, held out from training
	// ContainerIDs are the containers with at least one container-day.
	ContainerIDs  []string  `json:"container_ids"`
	ContainerDays int       `json:"container_days"` // evaluation points scored
	Skipped       int       `json:"skipped_points"` // points whose windows had missing samples
	Repeats       int       `json:"repeated_rows_dropped"`
	Recommenders  []Summary `json:"recommenders"`
	// EqualRisk is every recommender's memory limits scaled to each VPA
	// deployment's OOM rate, and the slack they then leave.
	EqualRisk []Matched `json:"equal_risk"`
	// MemoryCurves and CPUCurves trace each recommender's slack against
	// its risk as its limits are scaled (see Curve).
	MemoryCurves []Curve `json:"memory_curves"`
	CPUCurves    []Curve `json:"cpu_curves"`
	Days         []Day   `json:"days,omitempty"`
	// ConfidenceDeciles groups the model's container-days by the confidence
	// it answered with, lowest tenth first, with the error each group then
	// had (a model file only: the confidence is its fifth output).
	ConfidenceDeciles []ConfidenceDecile `json:"confidence_deciles,omitempty"`
	// ByWorkload splits the container-days by the synthetic workload type
	// their history resembles (Resembles, from the whole history window),
	// each recommender summarized on each part.
	ByWorkload []WorkloadSummary `json:"by_workload"`
}

// WorkloadSummary is every recommender on the container-days whose history
// resembles one workload type.
type WorkloadSummary struct {
	Workload     string    `json:"workload"`
	Days         int       `json:"container_days"`
	Recommenders []Summary `json:"recommenders"`
}

// ConfidenceDecile is a tenth of the model's container-days by the
// confidence it answered with, and what they realised: the confidence
// label (how well the history predicted the day, trainer.Labels: what the
// output is trained to forecast), the share with an OOM, the mean relative
// slack of the memory limit, and the mean memory error |ln(the following
// day's peak / the memory limit)|.
type ConfidenceDecile struct {
	Decile         int     `json:"decile"` // 1 = lowest confidence
	Days           int     `json:"days"`
	ConfidenceLow  float64 `json:"confidence_low"`
	ConfidenceHigh float64 `json:"confidence_high"`
	Realised       float64 `json:"realised_confidence"` // mean confidence label
	OOMRate        float64 `json:"oom_rate"`
	MemLimitSlack  float64 `json:"mem_limit_slack"`
	MemError       float64 `json:"mem_log_error"`
}

// confidenceDeciles groups days by conf (see ConfidenceDecile).
func confidenceDeciles(conf, label []float64, recs []trainer.Rec, scores []DayScore, futs []Future) []ConfidenceDecile {
	n := len(conf)
	if n < 10 {
		return nil
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(conf[a], conf[b]) })
	out := make([]ConfidenceDecile, 0, 10)
	for d := 0; d < 10; d++ {
		part := idx[d*n/10 : (d+1)*n/10]
		c := ConfidenceDecile{Decile: d + 1, Days: len(part), ConfidenceLow: conf[part[0]], ConfidenceHigh: conf[part[len(part)-1]]}
		for _, i := range part {
			if scores[i].OOM {
				c.OOMRate++
			}
			c.MemLimitSlack += scores[i].MemLimitSlack
			if i < len(label) {
				c.Realised += label[i]
			}
			c.MemError += math.Abs(math.Log(max(futs[i].MemMax, 1) / max(recs[i].MemLimit, 1)))
		}
		k := float64(len(part))
		c.OOMRate, c.MemLimitSlack, c.MemError, c.Realised = c.OOMRate/k, c.MemLimitSlack/k, c.MemError/k, c.Realised/k
		out = append(out, c)
	}
	return out
}

// Matched is a recommender's memory limits multiplied by Factor, the
// smallest factor at which its share of container-days with an OOM is no
// higher than OOMRate, and the slack it then leaves.
type Matched struct {
	Name          string  `json:"name"`
	Reference     string  `json:"reference"` // whose OOM rate was matched
	Factor        float64 `json:"factor"`
	OOMRate       float64 `json:"oom_rate"`
	MemLimitSlack Stat    `json:"mem_limit_slack"`
}

// Curve is one recommender's slack-vs-risk curve: its limits multiplied by
// each point's Factor. Memory: Risk is the share of container-days with an
// OOM, the points at the smallest factors reaching each of MemoryRiskLevels
// plus factor 1; CPU: Risk is the mean share of samples throttled, at each
// of CPUFactors (KRR, without a CPU limit, has only its factor-1 point).
// Slack is the mean relative limit slack. Points are in ascending Factor.
type Curve struct {
	Name   string       `json:"name"`
	Points []CurvePoint `json:"points"`
}

// CurvePoint is one point of a Curve.
type CurvePoint struct {
	Factor float64 `json:"factor"`
	Risk   float64 `json:"risk"`
	Slack  float64 `json:"slack"`
}

// MemoryRiskLevels are the OOM rates memory curves are matched at.
var MemoryRiskLevels = []float64{0, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.125, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50}

// CPUFactors are the CPU limit multipliers of CPU curves.
var CPUFactors = []float64{0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4}

// matchOOM scales limits by the smallest factor that keeps the share of
// futures whose peak exceeds the scaled limit at or below rate; nil when
// no factor does (a limit of 0).
func matchOOM(limits []float64, futs []Future, rate float64) *Matched {
	peaks := make([]float64, len(futs))
	for i, f := range futs {
		peaks[i] = f.MemMax
	}
	k, ok := trainer.OOMFactor(limits, peaks, rate)
	if !ok {
		return nil
	}
	return scaledMem(limits, futs, k)
}

// scaledMem scores limits × k against futs.
func scaledMem(limits []float64, futs []Future, k float64) *Matched {
	m := &Matched{Factor: k}
	slack := make([]float64, len(limits))
	ooms := 0
	for i, l := range limits {
		slack[i] = trainer.RelativeSlack(l*k, futs[i].MemP95)
		if !(futs[i].MemMax <= l*k) {
			ooms++
		}
	}
	m.OOMRate = float64(ooms) / float64(len(limits))
	m.MemLimitSlack = newStat(slack)
	return m
}

// memoryCurve is a recommender's memory curve (see Curve).
func memoryCurve(name string, limits []float64, futs []Future) Curve {
	c := Curve{Name: name}
	seen := map[float64]bool{}
	add := func(m *Matched) {
		if m == nil || seen[m.Factor] {
			return
		}
		seen[m.Factor] = true
		c.Points = append(c.Points, CurvePoint{Factor: m.Factor, Risk: m.OOMRate, Slack: m.MemLimitSlack.Mean})
	}
	add(scaledMem(limits, futs, 1))
	for _, r := range MemoryRiskLevels {
		add(matchOOM(limits, futs, r))
	}
	slices.SortFunc(c.Points, func(a, b CurvePoint) int { return cmp.Compare(a.Factor, b.Factor) })
	return c
}

// cpuCurve is a recommender's CPU curve (see Curve).
func cpuCurve(name string, recs []trainer.Rec, futs []Future) Curve {
	c := Curve{Name: name}
	unlimited := len(recs) > 0 && math.IsInf(recs[0].CPULimit, 1)
	for _, f := range CPUFactors {
		if unlimited && f != 1 {
			continue
		}
		slack, thr := 0.0, 0.0
		for i, r := range recs {
			l := r.CPULimit * f
			if math.IsInf(r.CPULimit, 1) {
				l = r.CPURequest // no limit: scored on the request, never throttled
			} else {
				thr += above(futs[i].cpuSorted, trainer.LimitOrZero(l))
			}
			slack += trainer.RelativeSlack(l, futs[i].CPUP95)
		}
		n := float64(len(recs))
		c.Points = append(c.Points, CurvePoint{Factor: f, Risk: thr / n, Slack: slack / n})
	}
	return c
}

// Day is one container-day of a report with Config.PerDay.
type Day struct {
	Container string           `json:"container"`
	End       time.Time        `json:"history_end"`
	CPUP95    float64          `json:"future_cpu_p95_cores"`
	MemP95    float64          `json:"future_mem_p95_bytes"`
	MemMax    float64          `json:"future_mem_max_bytes"`
	Recs      map[string]Rated `json:"recommendations"`
}

// Rated is a recommendation (cores, bytes; a CPU limit of null is none)
// and its score.
type Rated struct {
	CPURequest float64  `json:"cpu_request"`
	CPULimit   *float64 `json:"cpu_limit"`
	MemRequest float64  `json:"mem_request"`
	MemLimit   float64  `json:"mem_limit"`
	Score      DayScore `json:"score"`
}

func rated(r trainer.Rec, sc DayScore) Rated {
	out := Rated{CPURequest: r.CPURequest, MemRequest: r.MemRequest, MemLimit: r.MemLimit, Score: sc}
	if !math.IsInf(r.CPULimit, 1) {
		l := r.CPULimit
		out.CPULimit = &l
	}
	return out
}

// Summary returns the named recommender's summary, or nil.
func (r *Report) Summary(name string) *Summary {
	for i := range r.Recommenders {
		if r.Recommenders[i].Name == name {
			return &r.Recommenders[i]
		}
	}
	return nil
}

// FeatureRow computes a history window's model input exactly as the
// server's raw-metrics path does: features.FromHistory, then
// features.Normalize with the model's feature specs.
func FeatureRow(s *features.Scratch, w features.Window, ageDays float64, specs []model.Spec) (features.Raw, []float32, error) {
	raw, err := s.FromHistory(w, ageDays)
	if err != nil {
		return raw, nil, err
	}
	x, err := features.Normalize(raw, specs)
	return raw, x, err
}

// Evaluate replays series: at every point (see Points) of the containers
// cfg.Containers selects, it asks the model (when cfg.Predict or
// cfg.Recommend is set; its features read the last cfg.ModelHistory steps),
// VPA (trainer.VPARecommend on the history, at most trainer.VPAMaxHistory
// of it, deployed with its upper bound and with its target as the limit),
// KRR simple (KRRSimple) and, when every point has a provisioned capacity,
// the human-set size, for a recommendation, and scores each against the
// following window (ScoreDay), with slack-vs-risk curves (Curve). It
// returns ErrNoWindows if no point exists, and an error for a model with
// AllContainers or a model history longer than the history.
func Evaluate(ctx context.Context, series []*Series, cfg Config) (*Report, error) {
	if len(series) == 0 {
		return nil, fmt.Errorf("evaluate: %w: no series", ErrNoWindows)
	}
	withModel := cfg.Predict != nil || cfg.Recommend != nil
	if withModel && cfg.Containers == AllContainers {
		return nil, fmt.Errorf("evaluate: a model is scored on held-out containers only; want the held-out containers, or no model to score the baselines on all")
	}
	step := series[0].Step
	day := int(24 * time.Hour / step)
	w := cfg.Windows.withDefaults(day)
	modelHist := cfg.ModelHistory
	if modelHist <= 0 {
		modelHist = 2 * day
	}
	if withModel && modelHist > w.History {
		return nil, fmt.Errorf("evaluate: the model reads %d steps of history, more than the %d evaluated; want a history of at least %v",
			modelHist, w.History, time.Duration(modelHist)*step)
	}
	vpaHist := min(w.History, int(trainer.VPAMaxHistory/step))
	rep := &Report{
		Model: cfg.Model, StepSeconds: int(step / time.Second), HistorySteps: w.History,
		HistoryDays: float64(w.History) / float64(day), FutureSteps: w.Future, StrideSteps: w.Stride,
		Containers: cfg.Containers.String(), VPASamplesPerRow: cfg.VPASamplesPerRow, Series: len(series),
	}
	if withModel {
		rep.ModelHistorySteps = modelHist
	}

	var pts []Point
	for _, s := range series {
		if s.Step != step {
			return nil, fmt.Errorf("evaluate: series %s has step %v, others %v", s.ID, s.Step, step)
		}
		if HeldOut(s.ID) {
			rep.HeldOutSeries++
		}
		if !cfg.Containers.scores(s.ID) {
			continue
		}
		p, skipped := Points(s, w)
		rep.Skipped += skipped
		rep.Repeats += s.Repeats
		if len(p) > 0 {
			rep.ContainerIDs = append(rep.ContainerIDs, s.ID)
		}
		pts = append(pts, p...)
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("evaluate: %w (%d series, %d held out, scoring %s; want %d steps of %v without a gap longer than %d steps)",
			ErrNoWindows, len(series), rep.HeldOutSeries, cfg.Containers, w.History+w.Future, step, MaxFill)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.ContainerDays = len(pts)

	names := []string{NameVPAUpper, NameVPATarget, NameKRR}
	if withModel {
		names = slices.Insert(names, 0, NameModel)
	}
	provisioned := true
	for _, p := range pts {
		provisioned = provisioned && p.ProvCPU > 0 && p.ProvMem > 0
	}
	if provisioned {
		names = append(names, NameProvisioned)
	}
	recs := make(map[string][]trainer.Rec, len(names))
	for _, n := range names {
		recs[n] = make([]trainer.Rec, len(pts))
	}

	var x []float32
	var conf []float64      // the model's confidence per point (model file only)
	var labelConf []float64 // the confidence label of each point (model file only)
	var raws []features.Raw
	var ids []string
	switch {
	case cfg.Recommend != nil:
		raws, ids = make([]features.Raw, 0, len(pts)), make([]string, 0, len(pts))
	case cfg.Predict != nil:
		x = make([]float32, 0, len(pts)*model.NumFeatures)
	}
	var scratch features.Scratch
	kinds := make([]int32, len(pts)) // Resembles of each point's whole history
	for i, p := range pts {
		if raw, err := scratch.FromHistory(p.History, p.AgeDays); err == nil {
			kinds[i] = Resembles(raw)
		}
		mw := lastSteps(p.History, modelHist)
		switch {
		case cfg.Recommend != nil:
			raw, err := scratch.FromHistory(mw, p.AgeDays)
			if err != nil {
				return nil, fmt.Errorf("evaluate: %s at %s: %w", p.Series.ID, p.History.End.Format(time.RFC3339), err)
			}
			raws, ids = append(raws, raw), append(ids, p.Series.ID)
		case cfg.Predict != nil:
			raw, row, err := FeatureRow(&scratch, mw, p.AgeDays, cfg.Features)
			if err != nil {
				return nil, fmt.Errorf("evaluate: %s at %s: %w", p.Series.ID, p.History.End.Format(time.RFC3339), err)
			}
			x = append(x, row[:]...)
			// The confidence label of this day: how well the model's window
			// predicted it (trainer.Labels).
			memMax := 0.0
			for _, m := range mw.Mem {
				memMax = max(memMax, m)
			}
			labelConf = append(labelConf, trainer.Labels(raw, memMax, trainer.SummarizeFuture(&scratch, p.FutureCPU, p.FutureMem))[model.NumOutputs-1])
		}
		est := trainer.VPARecommend(lastSteps(p.History, vpaHist), trainer.VPAOptions{SamplesPerRow: cfg.VPASamplesPerRow})
		recs[NameVPAUpper][i] = est.UpperBoundAsLimit()
		recs[NameVPATarget][i] = est.TargetAsLimit()
		recs[NameKRR][i] = KRRSimple(p.History)
		if provisioned {
			recs[NameProvisioned][i] = trainer.Rec{CPURequest: p.ProvCPU, CPULimit: p.ProvCPU, MemRequest: p.ProvMem, MemLimit: p.ProvMem}
		}
	}
	if cfg.Recommend != nil {
		got, err := cfg.Recommend(ctx, ids, raws)
		if err != nil {
			return nil, fmt.Errorf("evaluate: model: %w", err)
		}
		if len(got) != len(pts) {
			return nil, fmt.Errorf("evaluate: model returned %d recommendations for %d points", len(got), len(pts))
		}
		copy(recs[NameModel], got)
	} else if cfg.Predict != nil {
		y, err := cfg.Predict(x, len(pts))
		if err != nil {
			return nil, fmt.Errorf("evaluate: model: %w", err)
		}
		if len(y) != len(pts)*model.NumOutputs {
			return nil, fmt.Errorf("evaluate: model returned %d values for %d rows; want %d", len(y), len(pts), len(pts)*model.NumOutputs)
		}
		conf = make([]float64, len(pts))
		for i := range pts {
			recs[NameModel][i] = trainer.RecFromOutputs(y[i*model.NumOutputs:(i+1)*model.NumOutputs], cfg.Outputs)
			if len(cfg.Outputs) == model.NumOutputs {
				conf[i] = cfg.Outputs[model.NumOutputs-1].Denormalize(float64(y[(i+1)*model.NumOutputs-1]))
			}
		}
	}

	scores := make(map[string][]DayScore, len(names))
	for _, n := range names {
		scores[n] = make([]DayScore, len(pts))
	}
	if cfg.PerDay {
		rep.Days = make([]Day, len(pts))
	}
	futs := make([]Future, len(pts))
	for i, p := range pts {
		f := NewFuture(p.FutureCPU, p.FutureMem)
		futs[i] = f
		if cfg.PerDay {
			rep.Days[i] = Day{Container: p.Series.ID, End: p.History.End, CPUP95: f.CPUP95, MemP95: f.MemP95, MemMax: f.MemMax, Recs: map[string]Rated{}}
		}
		for _, n := range names {
			sc := ScoreDay(recs[n][i], f)
			scores[n][i] = sc
			if cfg.PerDay {
				rep.Days[i].Recs[n] = rated(recs[n][i], sc)
			}
		}
	}
	if conf != nil {
		rep.ConfidenceDeciles = confidenceDeciles(conf, labelConf, recs[NameModel], scores[NameModel], futs)
	}
	for k := range int32(trainer.NumWorkloads) {
		ws := WorkloadSummary{Workload: trainer.WorkloadNames[k]}
		for _, n := range names {
			var part []DayScore
			for i, sc := range scores[n] {
				if kinds[i] == k {
					part = append(part, sc)
				}
			}
			ws.Days = len(part)
			if len(part) > 0 {
				ws.Recommenders = append(ws.Recommenders, Summarize(n, part))
			}
		}
		if ws.Days > 0 {
			rep.ByWorkload = append(rep.ByWorkload, ws)
		}
	}
	limits := make(map[string][]float64, len(names))
	for _, n := range names {
		rep.Recommenders = append(rep.Recommenders, Summarize(n, scores[n]))
		l := make([]float64, len(pts))
		for i, r := range recs[n] {
			l[i] = r.MemLimit
		}
		limits[n] = l
		rep.MemoryCurves = append(rep.MemoryCurves, memoryCurve(n, l, futs))
		rep.CPUCurves = append(rep.CPUCurves, cpuCurve(n, recs[n], futs))
	}
	for _, ref := range []string{NameVPAUpper, NameVPATarget} {
		rate := rep.Summary(ref).OOMRate
		for _, n := range names {
			if n == ref {
				continue
			}
			if m := matchOOM(limits[n], futs, rate); m != nil {
				m.Name, m.Reference = n, ref
				rep.EqualRisk = append(rep.EqualRisk, *m)
			}
		}
	}
	return rep, nil
}

// lastSteps is w cut to its last n samples (all of it when shorter).
func lastSteps(w features.Window, n int) features.Window {
	if k := len(w.CPU) - n; k > 0 {
		w.CPU, w.Mem = w.CPU[k:], w.Mem[k:]
	}
	return w
}

// SlackAtRisk is the named recommender's mean memory limit slack at an OOM
// rate of at most rate, read off its memory curve: the least slack among
// the points that safe (the smallest such factor, returned too); ok is
// false when no point is.
func (r *Report) SlackAtRisk(name string, rate float64) (slack, factor float64, ok bool) {
	for _, c := range r.MemoryCurves {
		if c.Name != name {
			continue
		}
		for _, p := range c.Points {
			if p.Risk <= rate+1e-12 && (!ok || p.Slack < slack) {
				slack, factor, ok = p.Slack, p.Factor, true
			}
		}
	}
	return slack, factor, ok
}
