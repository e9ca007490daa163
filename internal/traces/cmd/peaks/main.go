// Command peaks prints, as markdown, how the following day's memory peak
// compares with the history a recommender sees — next-day max ÷ history
// p99 and ÷ history max — for the synthetic generator (both majors'
// windows) and for real traces (7- and 2-day histories, every container,
// one point a day): the table in docs/data.md.
//
//	go run ./internal/traces/cmd/peaks [-samples 20000] [-seed 20261127] TRACE_DIR_OR_FILE...
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

func main() {
	samples := flag.Int("samples", 20000, "synthetic containers per major")
	seed := flag.Int64("seed", 20261127, "generator seed")
	flag.Parse()
	if err := run(*samples, *seed, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "peaks:", err)
		os.Exit(1)
	}
}

// ratios are one source's next-day max ÷ history p99 and ÷ history max.
type ratios struct {
	name     string
	p99, max []float64
}

func run(samples int, seed int64, paths []string) error {
	var out []ratios
	for _, major := range model.Majors {
		d, err := trainer.Generate(context.Background(), trainer.GenConfig{Samples: samples, Seed: seed, Major: major})
		if err != nil {
			return err
		}
		win, _ := model.HistoryWindowFor(major)
		out = append(out, fromDataset(fmt.Sprintf("synthetic, major %d window", major), d, 0),
			fromDataset(fmt.Sprintf("synthetic, major %d window, containers older than it", major), d, win.Hours()/24))
	}
	if len(paths) > 0 {
		series, _, _, err := traces.LoadPaths(paths, "")
		if err != nil {
			return err
		}
		for _, days := range []int{7, 2} {
			out = append(out, fromTraces(fmt.Sprintf("real, %d-day history", days), series, days))
		}
	}
	qs := []float64{10, 25, 50, 75, 90, 99}
	var b strings.Builder
	head := "| source | points | ratio |"
	sep := "|---|---:|---|"
	for _, q := range qs {
		head += fmt.Sprintf(" p%g |", q)
		sep += "---:|"
	}
	b.WriteString(head + " share > 1 |\n" + sep + "---:|\n")
	for _, r := range out {
		for _, k := range []struct {
			label string
			v     []float64
		}{{"next-day max ÷ history p99", r.p99}, {"next-day max ÷ history max", r.max}} {
			if len(k.v) == 0 {
				continue
			}
			s := slices.Clone(k.v)
			slices.Sort(s)
			fmt.Fprintf(&b, "| %s | %d | %s |", r.name, len(s), k.label)
			for _, q := range qs {
				fmt.Fprintf(&b, " %.2f |", features.Percentile(s, q))
			}
			above := len(s) - indexAbove(s, 1)
			fmt.Fprintf(&b, " %.1f%% |\n", 100*float64(above)/float64(len(s)))
		}
	}
	_, err := os.Stdout.WriteString(b.String())
	return err
}

func indexAbove(sorted []float64, v float64) int {
	i, _ := slices.BinarySearch(sorted, math.Nextafter(v, math.Inf(1)))
	return i
}

// fromDataset reads the ratios from generated rows: the memory-limit label
// is the next-day max × trainer.LabelHeadroom (at least the p90 label), the
// features carry the history's p99 and, for major 2, its max (major 1 has
// no max feature: only ÷ p99 is reported). Rows of containers younger than
// minAgeDays are left out.
func fromDataset(name string, d *trainer.Dataset, minAgeDays float64) ratios {
	specs, _ := model.FeaturesFor(mustMajor(d))
	outs := model.DefaultOutputs()
	iP99, iMax, iAge := -1, -1, -1
	for i, s := range specs {
		switch s.Name {
		case "mem_p99":
			iP99 = i
		case model.FeatureMemMax:
			iMax = i
		case "workload_age":
			iAge = i
		}
	}
	w := d.FeatureWidth()
	r := ratios{name: name}
	for i := 0; i < d.N; i++ {
		if specs[iAge].Denormalize(float64(d.X[i*w+iAge])) < minAgeDays {
			continue // a younger container's history is its whole life, shorter than the window
		}
		next := outs[3].Denormalize(float64(d.Y[i*model.NumOutputs+3])) / trainer.LabelHeadroom[3]
		r.p99 = append(r.p99, next/max(specs[iP99].Denormalize(float64(d.X[i*w+iP99])), 1<<20))
		if iMax >= 0 {
			r.max = append(r.max, next/max(specs[iMax].Denormalize(float64(d.X[i*w+iMax])), 1<<20))
		}
	}
	return r
}

func mustMajor(d *trainer.Dataset) int {
	m, err := d.Major()
	if err != nil {
		panic(err)
	}
	return m
}

// fromTraces cuts every container into daily points with a history of days
// and reads the ratios from the raw samples.
func fromTraces(name string, series []*traces.Series, days int) ratios {
	r := ratios{name: name}
	for _, s := range series {
		pts, _ := traces.Points(s, traces.Windows{History: days * 288, Future: 288, Stride: 288})
		for _, p := range pts {
			h := slices.Clone(p.History.Mem)
			slices.Sort(h)
			next := slices.Max(p.FutureMem)
			r.p99 = append(r.p99, max(next, 1<<20)/max(features.Percentile(h, 99), 1<<20))
			r.max = append(r.max, max(next, 1<<20)/max(h[len(h)-1], 1<<20))
		}
	}
	return r
}
