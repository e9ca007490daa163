package jobs

import (
	"strings"
	"testing"

	"recommendation-api/internal/model"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	active := model.MustParseVersion("v1.1.0")
	cand := func(oom, cpu, mem float64) ModelScores {
		s := model.Scores{OOMRate: oom, CPULimitSlack: cpu, MemLimitSlack: mem}
		return ModelScores{Version: model.MustParseVersion("v1.1.1"), Scores: s, MeanLimitSlack: meanLimitSlack(s)}
	}
	act := cand(0.05, 0.3, 0.3)
	act.Version = active
	for _, tc := range []struct {
		name   string
		c      ModelScores
		active *ModelScores
		ver    model.Version
		errMsg string
		better bool
		says   string
	}{
		{"Better", cand(0.04, 0.2, 0.3), &act, active, "", true, "v1.1.1 beats v1.1.0 on 100 held-out containers: OOM rate 0.0400 <= 0.0500, mean limit slack 0.2500 < 0.3000 (VPA baseline"},
		{"SameOOMLessSlack", cand(0.05, 0.29, 0.3), &act, active, "", true, "OOM rate 0.0500 <= 0.0500"},
		{"MoreOOM", cand(0.06, 0.1, 0.1), &act, active, "", false, "v1.1.1 does not beat v1.1.0 on 100 held-out containers: OOM rate 0.0600 > 0.0500"},
		{"SameSlack", cand(0.01, 0.3, 0.3), &act, active, "", false, "mean limit slack 0.3000 >= 0.3000"},
		{"NoActive", cand(0.5, 0.9, 0.9), nil, model.Version{}, "", true, "no version was active"},
		{"ActiveNotEvaluated", cand(0, 0, 0), nil, active, "its model file does not decode", false, "the active version v1.1.0 could not be evaluated: its model file does not decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &Evaluation{HeldOutSamples: 100, Candidate: tc.c, Active: tc.active, ActiveError: tc.errMsg}
			better, why := compare(ev, tc.ver)
			if better != tc.better || !strings.Contains(why, tc.says) {
				t.Errorf("compare = %v, %q; want %v and a reason saying %q", better, why, tc.better, tc.says)
			}
		})
	}
}
