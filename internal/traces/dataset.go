package traces

import (
	"fmt"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

// DefaultTrainStride is the step between training samples cut from a trace:
// one an hour (12 steps), so a 30-day VM gives about 650 overlapping
// history/following window pairs.
const DefaultTrainStride = 12

// Dataset cuts series into training samples with the synthetic generator's
// windows and label definitions: features from each history window
// (FeatureRow with model.DefaultFeatures), labels from the following window
// (trainer.SummarizeFuture and trainer.Labels, normalized with
// model.DefaultOutputs), one sample every w.Stride steps (0 =
// DefaultTrainStride; History and Future default to the generator's).
// Only training containers are used: those HeldOut keeps for evaluation
// never reach training data, so Evaluate scores a model trained on
// Dataset's output on containers it has not seen.
// With w.ExcludeTuning the Tuning containers are left out as well.
// Real rows have no workload type; each is tagged with the synthetic type
// its features resemble (Resembles). It returns ErrNoWindows when no
// sample can be cut.
func Dataset(series []*Series, w Windows) (*trainer.Dataset, error) {
	return DatasetFor(series, w, 1)
}

// DatasetFor is Dataset for a model major: its features
// (model.FeaturesFor) from a history of its window (model.HistoryWindowFor)
// unless w.History says otherwise.
func DatasetFor(series []*Series, w Windows, major int) (*trainer.Dataset, error) {
	train, _ := SplitByContainer(series)
	if w.Stride <= 0 {
		w.Stride = DefaultTrainStride
	}
	specsIn, err := model.FeaturesFor(major)
	if err != nil {
		return nil, err
	}
	if w.History <= 0 {
		win, _ := model.HistoryWindowFor(major)
		w.History = int(win / trainer.Step)
	}
	specsOut := model.DefaultOutputs()
	d := &trainer.Dataset{}
	if major != 1 {
		d.Width = len(specsIn)
	}
	var scratch features.Scratch
	for _, s := range train {
		if w.ExcludeTuning && Tuning(s.ID) {
			continue
		}
		pts, _ := Points(s, w)
		for _, p := range pts {
			raw, x, err := FeatureRow(&scratch, p.History, p.AgeDays, specsIn)
			if err != nil {
				return nil, fmt.Errorf("training data: %s at %s: %w", s.ID, p.History.End.Format(time.RFC3339), err)
			}
			histMemMax := 0.0
			for _, m := range p.History.Mem {
				histMemMax = max(histMemMax, m)
			}
			labels := trainer.Labels(raw, histMemMax, trainer.SummarizeFuture(&scratch, p.FutureCPU, p.FutureMem))
			d.X = append(d.X, x[:]...)
			for j, v := range labels {
				d.Y = append(d.Y, float32(specsOut[j].Normalize(v)))
			}
			d.Workload = append(d.Workload, Resembles(raw))
			d.N++
		}
	}
	if d.N == 0 {
		return nil, fmt.Errorf("training data: %w (%d series, %d of them held out for evaluation%s)", ErrNoWindows, len(series), len(series)-len(train), tuningNote(w.ExcludeTuning))
	}
	return d, nil
}

// TrainingData is what generate-data --trace cuts: DatasetFor at each
// history length of histories (in steps; 0 = the major's window), one
// sample every stride steps, the lengths' samples concatenated in order.
// Cutting the same containers at a shorter history too teaches a model
// the histories agents with young containers (or short metric retention)
// send.
func TrainingData(series []*Series, histories []int, stride, major int, excludeTuning bool) (*trainer.Dataset, error) {
	if len(histories) == 0 {
		histories = []int{0}
	}
	var d *trainer.Dataset
	for _, h := range histories {
		part, err := DatasetFor(series, Windows{History: h, Stride: stride, ExcludeTuning: excludeTuning}, major)
		if err != nil {
			return nil, fmt.Errorf("%d-step history: %w", h, err)
		}
		if d == nil {
			d = part
		} else {
			d = Concat(d, part)
		}
	}
	return d, nil
}

// Resembles tags a real history with the index (trainer.WorkloadNames) of
// the synthetic workload type it looks most like, by a rule of thumb on its
// features: memory growing over 5% a day → database; CPU steady (coefficient
// of variation ≤ 0.25) → compute; mostly idle with rare bursts (median under
// a tenth of the p99) → cron when very spiky (variation ≥ 1.5), batch
// otherwise; anything else → web. The tag only labels rows in the training
// file; training does not read it.
func Resembles(r features.Raw) int32 {
	const (
		web = iota
		batch
		compute
		database
		cron
	)
	switch {
	case r.MemTrend >= 0.05:
		return database
	case r.CPUVariance <= 0.25:
		return compute
	case r.CPUP50 <= 0.1*r.CPUP99 && r.CPUVariance >= 1.5:
		return cron
	case r.CPUP50 <= 0.1*r.CPUP99:
		return batch
	}
	return web
}

// Concat appends b's samples to a's in a new Dataset; both must hold the
// same features (Width).
func Concat(a, b *trainer.Dataset) *trainer.Dataset {
	return &trainer.Dataset{
		N:        a.N + b.N,
		Width:    a.Width,
		X:        append(append(make([]float32, 0, len(a.X)+len(b.X)), a.X...), b.X...),
		Y:        append(append(make([]float32, 0, len(a.Y)+len(b.Y)), a.Y...), b.Y...),
		Workload: append(append(make([]int32, 0, len(a.Workload)+len(b.Workload)), a.Workload...), b.Workload...),
	}
}

func tuningNote(excluded bool) string {
	if excluded {
		return ", the tuning containers left out too"
	}
	return ""
}
