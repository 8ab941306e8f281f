package eventbus

import (
	"bytes"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// peerExe reads a peer's executable path right at accept, from the
// kern.proc.pathname.<pid> sysctl: the path the kernel resolves from the
// process's text vnode, NUL-terminated. Empty if unreadable.
//
// The transport reports pid 0 on FreeBSD (transport/sys_freebsd.go), so
// until it can read the peer's pid this returns "" for every peer. The
// pid <= 0 guard matters: kern.proc.pathname.-1 is the caller's own path.
func peerExe(pid int) string {
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
