package transport

import (
	"errors"

	"golang.org/x/sys/unix"
)

const (
	osName = "Linux"
	// staleProbes: Linux refuses a connection only when nobody listens, so
	// one refused dial proves a socket stale (see probe).
	staleProbes = 1
)

// socketCloexec returns a new close-on-exec Unix stream socket.
func socketCloexec() (int, error) {
	return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}

// renameNoReplace renames from in fromfd to to in tofd unless to exists.
func renameNoReplace(fromfd int, from string, tofd int, to string) error {
	err := unix.Renameat2(fromfd, from, tofd, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem or kernel without RENAME_NOREPLACE: the lock and
		// clearStale, which left the path free, stand in for it.
		return unix.Renameat(fromfd, from, tofd, to)
	}
	return err
}
