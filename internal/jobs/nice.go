package jobs

import (
	"context"
	"runtime"
)

// DefaultNice is the niceness of a job's thread: the lowest CPU priority.
const DefaultNice = 19

// executeNiced runs the job on a goroutine locked to its own OS thread whose
// CPU priority is lowered (Options.Nice), when the job runs on one goroutine
// (Workers 1: the generator and trainer then do all their work on the
// calling goroutine). The thread is never unlocked, so the runtime discards
// it when the goroutine ends and no other goroutine inherits the priority.
func (m *Manager) executeNiced(ctx context.Context, e *entry) error {
	if m.opts.Workers != 1 || m.opts.Nice < 0 {
		return m.execute(ctx, e)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread exits with the goroutine
		if err := setThreadNice(m.opts.Nice); err != nil {
			m.log.Warn("training job runs at normal CPU priority", "err", err)
		}
		done <- m.execute(ctx, e)
	}()
	return <-done
}
