// Package traces replays real container usage against the model and the
// heuristics users already run, and turns real history into training data.
//
// Reading: ReadFile parses a trace file, gzipped or not, in one of two
// formats: Generic CSV (container_id,timestamp,cpu_cores,memory_bytes, what a
// Prometheus export gives; docs/evaluation.md shows the queries) and
// Bitbrains, the GWA-T-12 VM files as published (see readBitbrains for their
// quirks). A malformed file gives a *ParseError naming the file and line.
// Resample puts each container on the synthetic generator's 5-minute grid
// (trainer.Step): repeated timestamps dropped, jitter absorbed, gaps of up
// to an hour interpolated, longer ones left missing.
//
// Replay: Points cuts a series into evaluation points with the generator's
// window lengths (trainer.DefaultHistorySteps of history,
// trainer.DefaultFutureSteps after it; daily for evaluation, hourly for
// training data). Evaluate asks each recommender for a recommendation from
// the history window and scores it against what the following window used
// (ScoreDay: Autopilot's relative and absolute slack, OOMs, throttling,
// request shortfall), per container-day:
//
//   - the model: FeatureRow, the same features.FromHistory and
//     features.Normalize the server's raw-metrics path runs, then the
//     model's manifest outputs;
//   - VPA: trainer.VPA, the Kubernetes VPA recommender's target (p90 × 1.15
//     of a CPU histogram decaying with a 24 h half-life; of daily memory
//     peaks);
//   - KRR simple: KRRSimple (CPU request p95 without limit; memory max × 1.15);
//   - provisioned: the human-set VM size, when the trace records it.
//
// Dataset builds training rows from the same windows with the generator's
// label definitions (trainer.Labels). A report prints as a table
// (WriteTable), JSON (WriteJSON) and a PNG of slack against OOM and
// throttling rates (PlotPNG).
//
// Caveats: each container-day is replayed on its own, as if the
// recommendation had been applied at the end of the history and usage did
// not react to it; an OOM or throttling does not change the usage that
// follows, and VPA's OOM bump (memory sample × 1.2 after a kill) never
// fires. Usage is what the trace measured under the original sizes: a VM
// already capped by its capacity hides demand above it.
package traces
