package transport

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads SO_PEERCRED: the credentials the peer had when it called
// connect (or socketpair), fixed by the kernel.
func peerOf(conn net.Conn) (Peer, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return Peer{}, newError(ErrUnsupported, nil,
			"peer credentials need a Unix socket connection (*net.UnixConn), not %T", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("transport: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil && credErr != nil {
		err = fmt.Errorf("getsockopt SO_PEERCRED: %w", credErr)
	}
	if err != nil {
		return Peer{}, fmt.Errorf("transport: peer credentials: %w", err)
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: int(cred.Pid)}, nil
}
