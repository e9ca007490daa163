package serving

import "sync/atomic"

// Stats counts a loaded version's calls and failures (Run errors, NaN or
// out-of-range outputs); release control watches them during probation.
type Stats struct {
	calls, failures atomic.Int64
}

func (s *Stats) record(err error) {
	s.calls.Add(1)
	if err != nil {
		s.failures.Add(1)
	}
}

func (s *Stats) snapshot() StatsSnapshot {
	return StatsSnapshot{Calls: s.calls.Load(), Failures: s.failures.Load()}
}

// StatsSnapshot is a point-in-time copy of Stats.
type StatsSnapshot struct {
	Calls, Failures int64
}
