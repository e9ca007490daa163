package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockHolder reports whether another process holds the flock that bbolt
// takes on path, and that process's id from /proc/locks ("unknown" when it
// is not listed, e.g. from another PID namespace).
func lockHolder(path string) (pid string, locked bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return "", false
		}
	} else {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return "", false
	}
	fi, err := f.Stat()
	if err != nil {
		return "unknown", true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "unknown", true
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return "unknown", true
	}
	defer locks.Close()
	// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": pid, then
	// major:minor:inode of the file.
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		id := strings.Split(fields[5], ":")
		if len(id) == 3 && id[2] == strconv.FormatUint(st.Ino, 10) && fields[4] != strconv.Itoa(os.Getpid()) {
			return fields[4], true
		}
	}
	return "unknown", true
}

// whoAmI names this process's user for permission errors.
func whoAmI() string { return fmt.Sprintf("uid %d", os.Geteuid()) }

// describeFile gives a file's owner and mode for permission errors.
func describeFile(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("owned by uid %d with mode %v", st.Uid, fi.Mode().Perm())
	}
	return fmt.Sprintf("of mode %v", fi.Mode().Perm())
}
