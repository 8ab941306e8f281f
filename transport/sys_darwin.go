package transport

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	osName = "macOS"
	// staleProbes: macOS also refuses a connection when the listener's
	// queue is full (kern.ipc.somaxconn), so a socket counts as stale only
	// after this many refused dials (see probe).
	staleProbes = 3
)

// socketCloexec returns a new close-on-exec Unix stream socket. macOS has
// no SOCK_CLOEXEC, so the flag is set after socket(2), under
// syscall.ForkLock as the standard library does, so that no fork in
// between can inherit the descriptor.
func socketCloexec() (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// peerPID reads LOCAL_PEERPID: the pid of the process that connected,
// recorded by the kernel at connect time. macOS's xucred holds no pid.
func peerPID(fd int, _ *unix.Xucred) (int, error) {
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return 0, &os.SyscallError{Syscall: "getsockopt LOCAL_PEERPID", Err: err}
	}
	return pid, nil
}

// renameNoReplace renames from in fromfd to to in tofd unless to exists.
func renameNoReplace(fromfd int, from string, tofd int, to string) error {
	err := unix.RenameatxNp(fromfd, from, tofd, to, unix.RENAME_EXCL)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) {
		// A filesystem without RENAME_EXCL: the lock and clearStale,
		// which left the path free, stand in for it.
		return unix.Renameat(fromfd, from, tofd, to)
	}
	return err
}
