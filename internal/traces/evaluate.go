package traces

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

// Recommender names in reports, in report order.
const (
	NameModel       = "model"
	NameVPA         = "vpa"
	NameKRR         = "krr-simple"
	NameProvisioned = "provisioned"
)

// Config configures Evaluate.
type Config struct {
	Windows Windows
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

// Report is the outcome of replaying traces.
type Report struct {
	Model         string    `json:"model,omitempty"`
	StepSeconds   int       `json:"step_seconds"`
	HistorySteps  int       `json:"history_steps"`
	FutureSteps   int       `json:"future_steps"`
	StrideSteps   int       `json:"stride_steps"`
	Series        int       `json:"series"`         // containers read
	Containers    int       `json:"containers"`     // containers with at least one container-day
	ContainerDays int       `json:"container_days"` // evaluation points scored
	Skipped       int       `json:"skipped_points"` // points whose windows had missing samples
	Repeats       int       `json:"repeated_rows_dropped"`
	Recommenders  []Summary `json:"recommenders"`
	// ModelAtVPAOOM is the model with its memory limits scaled to VPA's OOM
	// rate: how much slack the model's ranking of containers saves at the
	// same risk. Nil without a model.
	ModelAtVPAOOM *Matched `json:"model_at_vpa_oom_rate,omitempty"`
	Days          []Day    `json:"days,omitempty"`
}

// Matched is a recommender's memory limits multiplied by Factor, the
// smallest factor at which its share of container-days with an OOM is no
// higher than OOMRate, and the slack it then leaves.
type Matched struct {
	Factor        float64 `json:"factor"`
	OOMRate       float64 `json:"oom_rate"`
	MemLimitSlack Stat    `json:"mem_limit_slack"`
}

// matchOOM scales limits by the smallest factor that keeps the share of
// futures whose peak exceeds the scaled limit at or below rate.
func matchOOM(limits []float64, futs []Future, rate float64) *Matched {
	n := len(limits)
	need := make([]float64, n) // the factor each day needs to avoid its OOM
	for i, l := range limits {
		need[i] = futs[i].MemMax / l
		if !(l > 0) {
			need[i] = math.Inf(1)
		}
	}
	sorted := slices.Clone(need)
	slices.Sort(sorted)
	allowed := int(math.Floor(rate*float64(n) + 1e-9))
	if allowed >= n {
		return &Matched{OOMRate: 1}
	}
	// The day needing exactly k must not OOM at l·k: l·(peak/l) can round
	// below the peak, so k gets a relative nudge far below any measurement.
	k := sorted[n-allowed-1] * (1 + 1e-9)
	if math.IsInf(k, 1) {
		return nil
	}
	m := &Matched{Factor: k}
	slack := make([]float64, n)
	ooms := 0
	for i, l := range limits {
		slack[i] = trainer.RelativeSlack(l*k, futs[i].MemP95)
		if !(futs[i].MemMax <= l*k) {
			ooms++
		}
	}
	m.OOMRate = float64(ooms) / float64(n)
	m.MemLimitSlack = newStat(slack)
	return m
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
func FeatureRow(s *features.Scratch, w features.Window, ageDays float64, specs []model.Spec) (features.Raw, [model.NumFeatures]float32, error) {
	raw, err := s.FromHistory(w, ageDays)
	if err != nil {
		return raw, [model.NumFeatures]float32{}, err
	}
	x, err := features.Normalize(raw, specs)
	return raw, x, err
}

// Evaluate replays series: at every point (see Points) it asks the model
// (when cfg.Predict or cfg.Recommend is set), VPA (trainer.VPA), KRR simple (KRRSimple) and,
// when every point has a provisioned capacity, the human-set size, for a
// recommendation from the history window, and scores each against the
// following window (ScoreDay). It returns ErrNoWindows if no point exists.
func Evaluate(ctx context.Context, series []*Series, cfg Config) (*Report, error) {
	if len(series) == 0 {
		return nil, fmt.Errorf("evaluate: %w: no series", ErrNoWindows)
	}
	step := series[0].Step
	day := int(24 * time.Hour / step)
	w := cfg.Windows.withDefaults(day)
	rep := &Report{Model: cfg.Model, StepSeconds: int(step / time.Second), HistorySteps: w.History, FutureSteps: w.Future, StrideSteps: w.Stride, Series: len(series)}

	var pts []Point
	for _, s := range series {
		if s.Step != step {
			return nil, fmt.Errorf("evaluate: series %s has step %v, others %v", s.ID, s.Step, step)
		}
		p, skipped := Points(s, w)
		rep.Skipped += skipped
		rep.Repeats += s.Repeats
		if len(p) > 0 {
			rep.Containers++
		}
		pts = append(pts, p...)
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("evaluate: %w (%d series; want %d steps of %v without a gap longer than %d steps)",
			ErrNoWindows, len(series), w.History+w.Future, step, MaxFill)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.ContainerDays = len(pts)

	names := []string{NameVPA, NameKRR}
	withModel := cfg.Predict != nil || cfg.Recommend != nil
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
	var raws []features.Raw
	var ids []string
	switch {
	case cfg.Recommend != nil:
		raws, ids = make([]features.Raw, 0, len(pts)), make([]string, 0, len(pts))
	case cfg.Predict != nil:
		x = make([]float32, 0, len(pts)*model.NumFeatures)
	}
	var scratch features.Scratch
	for i, p := range pts {
		switch {
		case cfg.Recommend != nil:
			raw, err := scratch.FromHistory(p.History, p.AgeDays)
			if err != nil {
				return nil, fmt.Errorf("evaluate: %s at %s: %w", p.Series.ID, p.History.End.Format(time.RFC3339), err)
			}
			raws, ids = append(raws, raw), append(ids, p.Series.ID)
		case cfg.Predict != nil:
			_, row, err := FeatureRow(&scratch, p.History, p.AgeDays, cfg.Features)
			if err != nil {
				return nil, fmt.Errorf("evaluate: %s at %s: %w", p.Series.ID, p.History.End.Format(time.RFC3339), err)
			}
			x = append(x, row[:]...)
		}
		recs[NameVPA][i] = trainer.VPA(p.History)
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
		for i := range pts {
			recs[NameModel][i] = trainer.RecFromOutputs(y[i*model.NumOutputs:(i+1)*model.NumOutputs], cfg.Outputs)
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
	for _, n := range names {
		rep.Recommenders = append(rep.Recommenders, Summarize(n, scores[n]))
	}
	if withModel {
		limits := make([]float64, len(pts))
		for i, r := range recs[NameModel] {
			limits[i] = r.MemLimit
		}
		rep.ModelAtVPAOOM = matchOOM(limits, futs, rep.Summary(NameVPA).OOMRate)
	}
	return rep, nil
}
