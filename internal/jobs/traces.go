package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"recommendation-api/internal/model"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// traceFiles resolves a request's trace sources under Options.TraceDir:
// nil when it has none; an error wrapping model.ErrInvalidInput, naming the
// source, for a path outside the directory, a source that matches no file,
// or an unknown format.
func (m *Manager) traceFiles(req Request) ([]string, traces.Format, error) {
	if len(req.Traces) == 0 {
		return nil, "", nil
	}
	if m.opts.TraceDir == "" {
		return nil, "", invalid("traces: this server reads no traces; start it with --trace-dir DIR and give paths relative to DIR")
	}
	var format traces.Format
	if req.TraceFormat != "" {
		f, err := traces.ParseFormat(req.TraceFormat)
		if err != nil {
			return nil, "", invalid("trace_format: %q; want generic, bitbrains, or empty to detect it", req.TraceFormat)
		}
		format = f
	}
	args := make([]string, 0, len(req.Traces))
	for i, p := range req.Traces {
		clean := filepath.Clean(p)
		if p == "" || filepath.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, "", invalid("traces[%d]: %q; want a path relative to the server's --trace-dir, without ..", i, p)
		}
		args = append(args, filepath.Join(m.opts.TraceDir, clean))
	}
	files, err := traces.ExpandPaths(args)
	if err != nil {
		return nil, "", fmt.Errorf("%w: traces: %v", model.ErrInvalidInput, err)
	}
	if len(files) == 0 {
		return nil, "", invalid("traces: %q match no file under the server's --trace-dir", req.Traces)
	}
	if format == "" { // detect from the first file; Load then checks them all
		if format, err = traces.DetectFormat(files[0]); err != nil {
			return nil, "", fmt.Errorf("%w: trace_format: %v", model.ErrInvalidInput, err)
		}
	}
	return files, format, nil
}

// traceDataset cuts training samples from the request's traces.
func (m *Manager) traceDataset(ctx context.Context, req Request) (*trainer.Dataset, error) {
	files, format, err := m.traceFiles(req)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	series, err := traces.Load(files, format, trainer.Step)
	if err != nil {
		return nil, fmt.Errorf("read traces: %w", err)
	}
	d, err := traces.DatasetFor(series, traces.Windows{Stride: traces.DefaultTrainStride}, req.Major)
	if err != nil {
		return nil, fmt.Errorf("cut traces: %w", err)
	}
	return d, nil
}

// trainingData is the job's training set: samples cut from its traces, if
// any, and req.Samples simulated containers.
func (m *Manager) trainingData(ctx context.Context, req Request, mix [trainer.NumWorkloads]float64) (*trainer.Dataset, error) {
	var real *trainer.Dataset
	if len(req.Traces) > 0 {
		var err error
		if real, err = m.traceDataset(ctx, req); err != nil {
			return nil, err
		}
		if req.Samples == 0 {
			return real, nil
		}
	}
	d, err := trainer.Generate(ctx, trainer.GenConfig{Samples: req.Samples, Seed: req.Seed, Mix: mix, Workers: m.opts.Workers, Major: req.Major})
	if err != nil {
		return nil, fmt.Errorf("generate training data: %w", err)
	}
	if real != nil {
		d = traces.Concat(real, d)
	}
	return d, nil
}
