package transport

import "golang.org/x/sys/unix"

const (
	osName = "FreeBSD"
	// staleProbes: FreeBSD also refuses a connection when the listener's
	// queue is full (kern.ipc.soacceptqueue), so a socket counts as stale
	// only after this many refused dials (see probe).
	staleProbes = 3
)

// socketCloexec returns a new close-on-exec Unix stream socket.
func socketCloexec() (int, error) {
	return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}

// peerPID would read the pid FreeBSD 13+ stores in the xucred (cr_pid), but
// golang.org/x/sys/unix (v0.49) declares that union member as a blank
// field, so it cannot be read without unsafe code; PID is 0 (see [Peer]).
func peerPID(int) (int, error) { return 0, nil }
