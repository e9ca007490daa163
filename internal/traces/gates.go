package traces

import (
	"fmt"
	"slices"

	"recommendation-api/internal/trainer"
)

// Gates judges a model's report on held-out real containers by what the
// model has to show against the baselines on the same container-days:
//
//   - real-oom: its OOM days as served are no higher than the reference
//     deployment's — VPA's upper bound as the limit for major 2 and later,
//     VPA's target as the limit for major 1 (an agent still on major 1
//     must not OOM more than VPA would);
//   - real-slack-upper-bound, real-slack-target: with its memory limits
//     scaled to each VPA deployment's OOM rate, it leaves less memory slack
//     than that deployment (major 2 and later; advisory for major 1);
//   - real-fallback: at VPA upper bound's OOM rate it also leaves less than
//     KRR's multiple of the history maximum scaled the same way — the
//     fallback a network has to beat, not match. Advisory: the embedded
//     v2.0.0 matches it without beating it (docs/model.md), and a gate the
//     defaults cannot pass would only be switched off;
//   - real-cpu: at VPA upper bound's throttled share it leaves less CPU
//     limit slack (advisory).
//
// A report without a model row gives no gates.
func Gates(rep *Report, major int) []trainer.Gate {
	model := rep.Summary(NameModel)
	ub, tg := rep.Summary(NameVPAUpper), rep.Summary(NameVPATarget)
	if model == nil || ub == nil || tg == nil {
		return nil
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }
	on := fmt.Sprintf("%d held-out container-days, %g-day history", rep.ContainerDays, rep.HistoryDays)
	var gates []trainer.Gate
	ref, refName := ub, NameVPAUpper
	if major < 2 {
		ref, refName = tg, NameVPATarget
	}
	gates = append(gates, trainer.Gate{Name: "real-oom", Passed: model.OOMRate <= ref.OOMRate,
		Detail: fmt.Sprintf("OOM days as served: model %s vs %s %s; must not be higher (%s)", pct(model.OOMRate), refName, pct(ref.OOMRate), on)})
	for _, r := range []struct {
		gate string
		ref  *Summary
	}{{"real-slack-upper-bound", ub}, {"real-slack-target", tg}} {
		m := rep.matched(NameModel, r.ref.Name)
		g := trainer.Gate{Name: r.gate, Advisory: major < 2}
		if m == nil {
			g.Detail = fmt.Sprintf("not measured: the model's limits cannot be scaled to %s's OOM rate %s", r.ref.Name, pct(r.ref.OOMRate))
		} else {
			g.Passed = m.MemLimitSlack.Mean < r.ref.MemLimitSlack.Mean
			g.Detail = fmt.Sprintf("memory limit slack at %s's OOM rate %s: model %s (limits × %.2f) vs %s; must be lower", r.ref.Name, pct(r.ref.OOMRate), pct(m.MemLimitSlack.Mean), m.Factor, pct(r.ref.MemLimitSlack.Mean))
		}
		if g.Advisory {
			g.Detail += " (advisory)"
		}
		gates = append(gates, g)
	}
	fb := trainer.Gate{Name: "real-fallback", Advisory: true}
	if m, k := rep.matched(NameModel, NameVPAUpper), rep.matched(NameKRR, NameVPAUpper); m != nil && k != nil {
		fb.Passed = m.MemLimitSlack.Mean < k.MemLimitSlack.Mean
		fb.Detail = fmt.Sprintf("memory limit slack at %s's OOM rate: model %s vs the history maximum × %.2f (krr-simple scaled) %s; must be lower", NameVPAUpper, pct(m.MemLimitSlack.Mean), 1.15*k.Factor, pct(k.MemLimitSlack.Mean))
	} else {
		fb.Detail = "not measured: no limits scale to VPA upper bound's OOM rate"
	}
	if fb.Advisory {
		fb.Detail += " (advisory)"
	}
	gates = append(gates, fb)
	cpu := trainer.Gate{Name: "real-cpu", Advisory: true}
	if s, ok := rep.cpuSlackAt(NameModel, ub.ThrottleRate.Mean); ok {
		cpu.Passed = s < ub.CPULimitSlack.Mean
		cpu.Detail = fmt.Sprintf("CPU limit slack at %s's throttled share %s: model %s vs %s; should be lower (advisory)", NameVPAUpper, pct(ub.ThrottleRate.Mean), pct(s), pct(ub.CPULimitSlack.Mean))
	} else {
		cpu.Detail = fmt.Sprintf("not measured: the model's CPU curve does not reach %s's throttled share %s (advisory)", NameVPAUpper, pct(ub.ThrottleRate.Mean))
	}
	return append(gates, cpu)
}

// matched is name's memory limits matched to reference's OOM rate
// (EqualRisk), or nil.
func (r *Report) matched(name, reference string) *Matched {
	for i := range r.EqualRisk {
		if m := &r.EqualRisk[i]; m.Name == name && m.Reference == reference {
			return m
		}
	}
	return nil
}

// cpuSlackAt reads name's CPU curve at a throttled share by linear
// interpolation between its two nearest points; ok is false outside it.
func (r *Report) cpuSlackAt(name string, rate float64) (float64, bool) {
	for _, c := range r.CPUCurves {
		if c.Name != name {
			continue
		}
		pts := slices.Clone(c.Points)
		slices.SortFunc(pts, func(a, b CurvePoint) int {
			if a.Risk != b.Risk {
				if a.Risk < b.Risk {
					return -1
				}
				return 1
			}
			if a.Slack > b.Slack {
				return -1
			}
			if a.Slack < b.Slack {
				return 1
			}
			return 0
		})
		for i := 0; i+1 < len(pts); i++ {
			a, b := pts[i], pts[i+1]
			if a.Risk <= rate && rate <= b.Risk {
				if b.Risk == a.Risk {
					return a.Slack, true
				}
				t := (rate - a.Risk) / (b.Risk - a.Risk)
				return a.Slack + t*(b.Slack-a.Slack), true
			}
		}
	}
	return 0, false
}
