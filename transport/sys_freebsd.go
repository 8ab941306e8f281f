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

// peerPID returns the pid FreeBSD 13 and later record in the xucred at
// connect time (cr_pid), read by xucredPID; 0 (unknown) on older releases.
func peerPID(_ int, cred *unix.Xucred) (int, error) { return xucredPID(cred), nil }

// renameNoReplace renames from in fromfd to to in tofd. FreeBSD's rename
// has no no-replace flag: the lock and clearStale, which left the path
// free, stand in for it.
func renameNoReplace(fromfd int, from string, tofd int, to string) error {
	return unix.Renameat(fromfd, from, tofd, to)
}
