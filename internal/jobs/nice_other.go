//go:build !linux

package jobs

import "errors"

func setThreadNice(int) error {
	return errors.New("per-thread CPU priority is only supported on Linux")
}
