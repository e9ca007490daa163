package onnxfile_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// openWatch reports IN_OPEN and IN_ACCESS events on a path (for a
// directory, on the files in it) from an inotify instance.
type openWatch struct{ fd int }

func watchOpens(t testing.TB, path string) *openWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify_init1: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
		t.Fatalf("inotify_add_watch %s: %v", path, err)
	}
	return &openWatch{fd: fd}
}

// events drains the queued events and describes them ("" for none).
func (w *openWatch) events() string {
	var out string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) || n <= 0 {
			return out
		}
		// struct inotify_event: wd, mask, cookie, len (uint32 each), name[len].
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			l := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := buf[off+unix.SizeofInotifyEvent : min(n, off+unix.SizeofInotifyEvent+l)]
			out += fmt.Sprintf("[mask %#x %q] ", mask, trimNUL(name))
			off += unix.SizeofInotifyEvent + l
		}
	}
}

func trimNUL(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
