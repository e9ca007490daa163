package traces

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// WriteTable prints the report: one block per recommender with the mean,
// median and 90th percentile of each score across container-days, then a
// one-line-per-recommender comparison of the headline numbers, each
// recommender's memory limit slack read off its curve at TableRiskLevels,
// and the equal-risk matches (Report.EqualRisk).
func (r *Report) WriteTable(w io.Writer) error {
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }
	cores := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	gib := func(v float64) string { return fmt.Sprintf("%.2f", v/(1<<30)) }
	var b strings.Builder
	for _, s := range r.Recommenders {
		name := s.Name
		if s.Name == NameModel && r.Model != "" {
			name += " " + r.Model
		}
		fmt.Fprintf(&b, "%s: %d container-days\n", name, s.ContainerDays)
		fmt.Fprintf(&b, "  %-38s %8s %8s %8s\n", "", "mean", "p50", "p90")
		for _, row := range []struct {
			label string
			st    Stat
			f     func(float64) string
		}{
			{"memory limit slack (relative)", s.MemLimitSlack, pct},
			{"memory request slack (relative)", s.MemRequestSlack, pct},
			{"CPU limit slack (relative)", s.CPULimitSlack, pct},
			{"CPU request slack (relative)", s.CPURequestSlack, pct},
			{"memory limit slack (GiB)", s.MemLimitSlackBytes, gib},
			{"CPU limit slack (cores)", s.CPULimitSlackCores, cores},
			{"CPU samples above limit (throttling)", s.ThrottleRate, pct},
			{"CPU samples above request", s.CPURequestShortfall, pct},
			{"memory samples above request", s.MemRequestShortfall, pct},
		} {
			fmt.Fprintf(&b, "  %-38s %8s %8s %8s\n", row.label, row.f(row.st.Mean), row.f(row.st.P50), row.f(row.st.P90))
		}
		fmt.Fprintf(&b, "  %-38s %8s (%d)\n", "container-days with an OOM", pct(s.OOMRate), s.OOMDays)
		fmt.Fprintf(&b, "  %-38s %8s\n\n", "container-days with throttling", pct(s.ThrottledDays))
	}
	fmt.Fprintf(&b, "means over %d container-days of %d %s containers, %g-day history:\n", r.ContainerDays, len(r.ContainerIDs), r.Containers, r.HistoryDays)
	fmt.Fprintf(&b, "  %-16s %16s %9s %16s %18s\n", "recommender", "mem limit slack", "OOM days", "CPU limit slack", "throttled samples")
	for _, s := range r.Recommenders {
		fmt.Fprintf(&b, "  %-16s %16s %9s %16s %18s\n", s.Name, pct(s.MemLimitSlack.Mean), pct(s.OOMRate), pct(s.CPULimitSlack.Mean), pct(s.ThrottleRate.Mean))
	}
	fmt.Fprintf(&b, "memory limit slack at equal risk (limits scaled to an OOM rate of at most ...):\n")
	fmt.Fprintf(&b, "  %-16s", "recommender")
	for _, rate := range TableRiskLevels {
		fmt.Fprintf(&b, " %13s", pct(rate))
	}
	b.WriteString("\n")
	for _, s := range r.Recommenders {
		fmt.Fprintf(&b, "  %-16s", s.Name)
		for _, rate := range TableRiskLevels {
			slack, k, ok := r.SlackAtRisk(s.Name, rate)
			cell := "-"
			if ok {
				cell = fmt.Sprintf("%s ×%.2f", pct(slack), k)
			}
			fmt.Fprintf(&b, " %13s", cell)
		}
		b.WriteString("\n")
	}
	for _, m := range r.EqualRisk {
		fmt.Fprintf(&b, "%s at %s's OOM rate: memory limits × %.2f give %s OOM days and %s memory limit slack (%s %s)\n",
			m.Name, m.Reference, m.Factor, pct(m.OOMRate), pct(m.MemLimitSlack.Mean), m.Reference, pct(r.Summary(m.Reference).MemLimitSlack.Mean))
	}
	if len(r.ByWorkload) > 0 {
		fmt.Fprintf(&b, "by the workload type each history resembles (memory limit slack / OOM days, CPU limit slack / throttled samples):\n")
		fmt.Fprintf(&b, "  %-9s %6s", "workload", "days")
		for _, s := range r.Recommenders {
			fmt.Fprintf(&b, " %29s", s.Name)
		}
		b.WriteString("\n")
		for _, w := range r.ByWorkload {
			fmt.Fprintf(&b, "  %-9s %6d", w.Workload, w.Days)
			for _, s := range w.Recommenders {
				fmt.Fprintf(&b, " %29s", fmt.Sprintf("%s/%s %s/%s", pct(s.MemLimitSlack.Mean), pct(s.OOMRate), pct(s.CPULimitSlack.Mean), pct(s.ThrottleRate.Mean)))
			}
			b.WriteString("\n")
		}
	}
	if len(r.ConfidenceDeciles) > 0 {
		fmt.Fprintf(&b, "the model's container-days by the confidence it answered with (decile 1 = lowest):\n")
		fmt.Fprintf(&b, "  %-7s %6s %17s %9s %9s %16s %22s\n", "decile", "days", "confidence", "realised", "OOM days", "mem limit slack", "|ln(peak / mem limit)|")
		for _, c := range r.ConfidenceDeciles {
			fmt.Fprintf(&b, "  %-7d %6d %8.3f – %-6.3f %9.3f %9s %16s %22.3f\n", c.Decile, c.Days, c.ConfidenceLow, c.ConfidenceHigh, c.Realised, pct(c.OOMRate), pct(c.MemLimitSlack), c.MemError)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TableRiskLevels are the OOM rates WriteTable reads each memory curve at.
var TableRiskLevels = []float64{0.01, 0.02, 0.05, 0.10}

// Evaluation is what one evaluate run wrote: its reports (one per history
// length) and how they were made.
type Evaluation struct {
	Command  string    `json:"command,omitempty"`
	Revision string    `json:"revision,omitempty"` // the build's VCS revision, when known
	Reports  []*Report `json:"reports"`
}

// WriteJSON writes the evaluation as indented JSON to path (through a
// temporary file renamed into place).
func (e *Evaluation) WriteJSON(path string) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return writeFile(path, append(b, '\n'))
}

// writeFile writes b to path through a temporary file renamed into place,
// creating path's directory if need be.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
