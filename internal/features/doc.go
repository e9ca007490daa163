// Package features is the one implementation of the model's input features:
// every feature of the catalogue (model.Catalog), of which each major reads
// a declared list (model.FeaturesFor; a manifest's Features). The synthetic generator (package trainer), trace evaluation and
// the server's raw-metrics path all compute them here, so a feature means the
// same thing in training and in serving.
//
// FromHistory turns a usage history (a Window of CPU and memory samples at a
// fixed step) into Raw features in raw units; Raw.Validate checks raw
// features a client sent against their plausible Ranges (documented
// constants such as MaxCPUCores and MaxMemTrend) and the percentile order; Normalize maps them onto [0,1] with the specs of a
// manifest (model.DefaultFeatures for major version 1).
//
// Definitions, matching the Description of each model.DefaultFeatures spec:
//
//   - cpu_p50, cpu_p95, cpu_p99, mem_p50, mem_p95, mem_p99: nearest-rank
//     percentiles of the window: the p-th percentile of n samples is the
//     k-th smallest with k = ⌈p/100·n⌉. It is always an observed sample, so a
//     p99 of a series never exceeds its maximum.
//   - cpu_variance: coefficient of variation of CPU, population standard
//     deviation over mean; 0 when the mean is 0.
//   - mem_trend: least-squares slope of memory against time, in bytes per
//     day, divided by the window's mean memory (1/day); 0 for a single sample
//     or a zero mean.
//   - throttle_ratio: fraction of samples with CPU ≥ the current CPU limit;
//     0 when there is no limit.
//   - hour_of_day, day_of_week: UTC hour (0–23) and weekday (0 = Sunday) of
//     Window.End, the time of the last sample.
//   - workload_age: days since the workload first appeared, as given.
//   - cpu_max, mem_max: the window's maxima. cpu_max_24h, mem_max_24h: the
//     maxima of its last 24 h (its last 24h/Step samples).
//   - mem_peak_p95: nearest-rank p95 of the daily memory peaks, one per 24 h
//     interval counted back from the last sample (the oldest may be
//     partial). Over fewer than 20 days it is the maximum itself.
//
// Raw holds every catalogue feature; Raw.All is its name-based view, indexed
// by the catalogue (model.LookupFeature). A Layout, built once per manifest,
// holds the catalogue index of each declared column, so normalizing any
// declared list is one indexed loop (Layout.NormalizeInto); Raw.Validate
// checks major 1's twelve, Layout.Validate the declared ones. Computable says
// which declared features a request's raw fields cannot give.
//
// Caveat: percentiles are found by selection (counting values into ranges,
// then a quickselect inside the few ranges holding the wanted ranks), not by
// sorting: on a 576-sample window a sort costs about ten times more, and the
// generator calls FromHistory for every simulated container. Use a Scratch
// to make repeated calls allocate nothing.
package features
