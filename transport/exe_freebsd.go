package transport

import (
	"bytes"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// exeOf reads a peer's executable path right at accept, from the
// kern.proc.pathname.<pid> sysctl: the path the kernel resolves from the
// process's text vnode, NUL-terminated. Empty if unreadable.
//
// The transport reads the peer's pid on FreeBSD 13 and later
// (transport/xucred.go); older releases report 0, and then this returns
// "". The pid <= 0 guard matters: kern.proc.pathname.-1 is the caller's
// own path.
func exeOf(pid int) string {
	if pid <= 0 {
		return ""
	}
	buf, err := unix.SysctlRaw("kern.proc.pathname", pid)
	if err != nil {
		return ""
	}
	if n := bytes.IndexByte(buf, 0); n >= 0 {
		buf = buf[:n]
	}
	exe := string(buf)
	if !filepath.IsAbs(exe) {
		return ""
	}
	return exe
}
