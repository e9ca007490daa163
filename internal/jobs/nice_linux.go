package jobs

import "syscall"

// setThreadNice sets the calling OS thread's niceness (Linux schedules
// threads individually, so this leaves the rest of the process alone).
func setThreadNice(n int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), n)
}
