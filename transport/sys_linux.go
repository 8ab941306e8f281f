package transport

import "golang.org/x/sys/unix"

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
