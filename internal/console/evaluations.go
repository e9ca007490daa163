package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
)

// MaxReportBytes bounds one evaluation report read from EvaluationDir; the
// reports `evaluate` writes without --per-day are well under 1 MiB.
const MaxReportBytes = 16 << 20

// reportName is the file name a report may have: a plain name, no
// directory, no leading dot.
var reportName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$`)

// Report is the part of one `evaluate` report (traces.Report) the console
// shows: how it was made, each recommender's scores as recommended, the
// equal-risk matches and the slack-vs-risk curves. The JSON names are
// traces.Report's.
type Report struct {
	Model            string           `json:"model"`
	HistoryDays      float64          `json:"history_days"`
	ContainersScored string           `json:"containers_scored"`
	Series           int              `json:"series"`
	HeldOutSeries    int              `json:"held_out_series"`
	ContainerDays    int              `json:"container_days"`
	Recommenders     []Recommender    `json:"recommenders"`
	EqualRisk        []EqualRiskMatch `json:"equal_risk"`
	MemoryCurves     []Curve          `json:"memory_curves"`
	CPUCurves        []Curve          `json:"cpu_curves"`
}

// Stat is a score's mean and percentiles across container-days.
type Stat struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
}

// Recommender is one recommender's scores as recommended.
type Recommender struct {
	Name          string  `json:"name"`
	ContainerDays int     `json:"container_days"`
	CPULimitSlack Stat    `json:"cpu_limit_slack"`
	MemLimitSlack Stat    `json:"mem_limit_slack"`
	OOMRate       float64 `json:"oom_rate"`
	OOMDays       int     `json:"oom_days"`
	ThrottleRate  Stat    `json:"throttle_rate"`
}

// EqualRiskMatch is a recommender's memory limits scaled to a reference's
// OOM rate.
type EqualRiskMatch struct {
	Name          string  `json:"name"`
	Reference     string  `json:"reference"`
	Factor        float64 `json:"factor"`
	OOMRate       float64 `json:"oom_rate"`
	MemLimitSlack Stat    `json:"mem_limit_slack"`
}

// Curve is a recommender's slack against risk as its limits are scaled.
type Curve struct {
	Name   string       `json:"name"`
	Points []CurvePoint `json:"points"`
}

// CurvePoint is one scaling factor's risk and mean relative slack.
type CurvePoint struct {
	Factor float64 `json:"factor"`
	Risk   float64 `json:"risk"`
	Slack  float64 `json:"slack"`
}

// Evaluation is one report file as the console serves it.
type Evaluation struct {
	File     string   `json:"file"`
	Command  string   `json:"command,omitempty"`
	Revision string   `json:"revision,omitempty"`
	Reports  []Report `json:"reports"`
}

// EvaluationList is the evaluations listing: each readable report with its
// reports' curves left out, and the files that are not reports.
type EvaluationList struct {
	Dir         string       `json:"dir,omitempty"`
	Evaluations []Evaluation `json:"evaluations"`
	Unreadable  []Unreadable `json:"unreadable"`
}

// Unreadable names a *.json file of the directory that is not a report.
type Unreadable struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

type evaluations struct {
	dir string
	log *slog.Logger
}

func (e *evaluations) list(w http.ResponseWriter, _ *http.Request) {
	out := EvaluationList{Dir: e.dir, Evaluations: []Evaluation{}, Unreadable: []Unreadable{}}
	root, err := e.open()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			e.log.Error("console: evaluation directory", "dir", e.dir, "err", err)
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		e.log.Error("console: evaluation directory", "dir", e.dir, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "the evaluation directory cannot be read; the server log says why")
		return
	}
	for _, d := range entries {
		if !reportName.MatchString(d.Name()) || d.IsDir() {
			continue
		}
		ev, err := readReport(root, d.Name())
		if err != nil {
			e.log.Warn("console: evaluation report", "dir", e.dir, "file", d.Name(), "err", err)
			out.Unreadable = append(out.Unreadable, Unreadable{File: d.Name(), Reason: reasonOf(err)})
			continue
		}
		for i := range ev.Reports {
			ev.Reports[i].MemoryCurves, ev.Reports[i].CPUCurves, ev.Reports[i].EqualRisk = nil, nil, nil
		}
		out.Evaluations = append(out.Evaluations, *ev)
	}
	slices.SortFunc(out.Evaluations, func(a, b Evaluation) int { return strings.Compare(a.File, b.File) })
	writeJSON(w, http.StatusOK, out)
}

func (e *evaluations) get(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if !reportName.MatchString(name) {
		writeJSONError(w, http.StatusBadRequest, "file: want a report's file name (letters, digits, '.', '_', '-', ending in .json), as the listing names it")
		return
	}
	root, err := e.open()
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "no evaluation report "+name+": the server has no evaluation directory")
		return
	}
	defer root.Close()
	ev, err := readReport(root, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeJSONError(w, http.StatusNotFound, "no evaluation report "+name+"; GET "+Prefix+"api/evaluations lists them")
	case err != nil:
		e.log.Warn("console: evaluation report", "dir", e.dir, "file", name, "err", err)
		writeJSONError(w, http.StatusNotFound, "evaluation report "+name+" cannot be shown: "+reasonOf(err))
	default:
		writeJSON(w, http.StatusOK, ev)
	}
}

func (e *evaluations) open() (*os.Root, error) {
	if e.dir == "" {
		return nil, fs.ErrNotExist
	}
	return os.OpenRoot(e.dir)
}

// errNotReport marks a file that is not an `evaluate` report.
var errNotReport = errors.New("not an evaluate report")

// readReport reads and decodes one report inside root (a symbolic link out
// of it is refused by os.Root).
func readReport(root *os.Root, name string) (*Evaluation, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", errNotReport)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxReportBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", errNotReport, MaxReportBytes)
	}
	ev := &Evaluation{}
	if err := json.Unmarshal(b, ev); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotReport, err)
	}
	if len(ev.Reports) == 0 {
		return nil, fmt.Errorf("%w: no reports", errNotReport)
	}
	for _, r := range ev.Reports {
		if len(r.Recommenders) == 0 {
			return nil, fmt.Errorf("%w: a report without recommenders", errNotReport)
		}
	}
	ev.File = name
	return ev, nil
}

// reasonOf is what a client is told about an unreadable report: the kind of
// failure, never the file's content.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, errNotReport):
		return "it is not a report written by `recommendation-api evaluate --out` (JSON with reports and recommenders)"
	case errors.Is(err, fs.ErrPermission):
		return "the server may not read it"
	}
	return "it cannot be read; the server log says why"
}
