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
// Split: HeldOut assigns each container, by a hash of its ID alone, to the
// training or the held-out set (SplitByContainer); Dataset cuts training
// rows from the former only, Evaluate scores a model on the latter only.
//
// Replay: Points cuts a series into evaluation points: a history window
// (2 days by default; evaluate also runs 7, what VPA keeps) and the
// following 24 h, daily for evaluation, hourly for training data. Evaluate
// asks each recommender for a recommendation from the history window and
// scores it against what the following window used (ScoreDay: Autopilot's
// relative and absolute slack, OOMs, throttling, request shortfall), per
// container-day:
//
//   - the model: FeatureRow on the last 48 h of the history (the window its
//     features are defined on), the same features.FromHistory and
//     features.Normalize the server's raw-metrics path runs;
//   - VPA: trainer.VPARecommend, the Kubernetes VPA recommender's bounds,
//     deployed with the upper bound as the limit and with the target as
//     the limit;
//   - KRR simple: KRRSimple (CPU request p95 without limit; memory max × 1.15);
//   - provisioned: the human-set VM size, when the trace records it.
//
// Each recommender's limits are also scaled along slack-vs-risk curves
// (Curve), so recommenders can be compared at equal risk. Dataset builds
// training rows with the generator's label definitions (trainer.Labels). A
// report prints as a table (WriteTable); an Evaluation (a report per
// history length) as JSON (WriteJSON) and as a PNG of the curves (PlotPNG).
//
// Caveats: each container-day is replayed on its own, as if the
// recommendation had been applied at the end of the history and usage did
// not react to it; an OOM or throttling does not change the usage that
// follows, and VPA's OOM bump never fires (the trace formats record no
// OOM kill). Usage is what the trace measured under the original sizes: a VM
// already capped by its capacity hides demand above it.
package traces
