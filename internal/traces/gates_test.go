package traces

import (
	"strings"
	"testing"

	"recommendation-api/internal/trainer"
)

// gateReport is a report whose model OOMs on modelOOM of its days and,
// matched to each VPA deployment's OOM rate, leaves the given slack.
func gateReport(modelOOM, atUpper, atTarget, krrAtUpper, cpuAt float64) *Report {
	sum := func(name string, oom, slack, cpuSlack, thr float64) Summary {
		return Summary{Name: name, OOMRate: oom, MemLimitSlack: Stat{Mean: slack}, CPULimitSlack: Stat{Mean: cpuSlack}, ThrottleRate: Stat{Mean: thr}}
	}
	return &Report{
		ContainerDays: 100, HistoryDays: 7,
		Recommenders: []Summary{
			sum(NameModel, modelOOM, 0.8, 0.6, 0.005),
			sum(NameVPAUpper, 0.04, 0.68, 0.42, 0.01),
			sum(NameVPATarget, 0.09, 0.62, 0.31, 0.02),
			sum(NameKRR, 0.05, 0.66, 0.19, 0),
		},
		EqualRisk: []Matched{
			{Name: NameModel, Reference: NameVPAUpper, Factor: 0.7, OOMRate: 0.04, MemLimitSlack: Stat{Mean: atUpper}},
			{Name: NameModel, Reference: NameVPATarget, Factor: 0.6, OOMRate: 0.09, MemLimitSlack: Stat{Mean: atTarget}},
			{Name: NameKRR, Reference: NameVPAUpper, Factor: 1.02, OOMRate: 0.04, MemLimitSlack: Stat{Mean: krrAtUpper}},
		},
		CPUCurves: []Curve{{Name: NameModel, Points: []CurvePoint{{Factor: 0.5, Risk: 0.03, Slack: cpuAt - 0.1}, {Factor: 1, Risk: 0.005, Slack: cpuAt + 0.05}}}},
	}
}

func gateByName(t *testing.T, gates []trainer.Gate, name string) trainer.Gate {
	t.Helper()
	for _, g := range gates {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no gate %q in %+v", name, gates)
	return trainer.Gate{}
}

func TestGates(t *testing.T) {
	// A major-2 model that wins everywhere on memory and loses on CPU.
	g := Gates(gateReport(0.02, 0.66, 0.60, 0.67, 0.50), 2)
	for _, name := range []string{"real-oom", "real-slack-upper-bound", "real-slack-target"} {
		if x := gateByName(t, g, name); !x.Passed || x.Advisory {
			t.Errorf("%s = %+v; want an enforced pass", name, x)
		}
	}
	if x := gateByName(t, g, "real-fallback"); !x.Passed || !x.Advisory {
		t.Errorf("real-fallback = %+v; want an advisory pass", x)
	}
	// At a throttled share of 1%: 0.4 + 0.15·(0.02/0.025) = 0.52 against VPA's 0.42.
	if x := gateByName(t, g, "real-cpu"); x.Passed || !x.Advisory || !strings.Contains(x.Detail, "52.0%") {
		t.Errorf("real-cpu = %+v; want an advisory miss reading 52.0%% off the curve", x)
	}
	// Each memory criterion fails on its own.
	for _, c := range []struct {
		gate string
		rep  *Report
	}{
		{"real-oom", gateReport(0.05, 0.66, 0.60, 0.67, 0.5)},
		{"real-slack-upper-bound", gateReport(0.02, 0.69, 0.60, 0.70, 0.5)},
		{"real-slack-target", gateReport(0.02, 0.66, 0.63, 0.67, 0.5)},
	} {
		if x := gateByName(t, Gates(c.rep, 2), c.gate); x.Passed || x.Advisory {
			t.Errorf("%s = %+v; want an enforced failure", c.gate, x)
		}
	}
	if x := gateByName(t, Gates(gateReport(0.02, 0.66, 0.60, 0.65, 0.5), 2), "real-fallback"); x.Passed || !x.Advisory {
		t.Errorf("real-fallback = %+v; want an advisory miss", x)
	}
	// Major 1 answers to VPA's target as the limit on OOM days, and the
	// slack gates only advise.
	g = Gates(gateReport(0.05, 0.70, 0.65, 0.67, 0.5), 1)
	if x := gateByName(t, g, "real-oom"); !x.Passed || !strings.Contains(x.Detail, NameVPATarget) {
		t.Errorf("major-1 real-oom = %+v; want a pass against %s (5%% ≤ 9%%)", x, NameVPATarget)
	}
	for _, name := range []string{"real-slack-upper-bound", "real-slack-target", "real-fallback"} {
		if x := gateByName(t, g, name); x.Passed || !x.Advisory {
			t.Errorf("major-1 %s = %+v; want an advisory miss", name, x)
		}
	}
	if Gates(&Report{}, 2) != nil {
		t.Error("a report without a model gave gates")
	}
}
