//go:build darwin || freebsd

package transport

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads LOCAL_PEERCRED, the credentials the peer had when it called
// connect, fixed by the kernel, and the pid where the system reveals it
// (peerPID in sys_GOOS.go).
func peerOf(conn net.Conn) (Peer, error) { return peerCred(conn, xucredPeer) }

func xucredPeer(fd int) (Peer, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Peer{}, fmt.Errorf("getsockopt LOCAL_PEERCRED: %w", err)
	}
	// cr_groups[0] is the effective gid; the kernel always fills it.
	if cred.Ngroups < 1 {
		return Peer{}, fmt.Errorf("getsockopt LOCAL_PEERCRED: no group in the peer's credentials")
	}
	pid, err := peerPID(fd, cred)
	if err != nil {
		return Peer{}, err
	}
	return Peer{UID: cred.Uid, GID: cred.Groups[0], PID: pid}, nil
}
