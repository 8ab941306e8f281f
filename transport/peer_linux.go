package transport

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads SO_PEERCRED: the credentials the peer had when it called
// connect (or socketpair), fixed by the kernel.
func peerOf(conn net.Conn) (Peer, error) { return peerCred(conn, ucredPeer) }

func ucredPeer(fd int) (Peer, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Peer{}, fmt.Errorf("getsockopt SO_PEERCRED: %w", err)
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: int(cred.Pid)}, nil
}
