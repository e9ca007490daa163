//go:build !linux

package main

import (
	"fmt"
	"io/fs"
)

// lockHolder would tell whether another process holds the registry's
// lock; without /proc/locks and flock probing it reports none, and the
// registry's own error is shown.
func lockHolder(string) (pid string, locked bool) { return "", false }

// whoAmI names this process's user for permission errors.
func whoAmI() string { return "this user" }

// describeFile gives a file's mode for permission errors.
func describeFile(fi fs.FileInfo) string { return fmt.Sprintf("of mode %v", fi.Mode().Perm()) }
