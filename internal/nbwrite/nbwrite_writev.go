//go:build linux || darwin

package nbwrite

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// Supported reports whether TryWrite can write on this OS.
const Supported = true

// TryWrite writes what the socket accepts of bufs now, without waiting:
// one writev on the non-blocking descriptor. A full socket buffer is not
// an error; n says how much was written.
func TryWrite(rc syscall.RawConn, bufs [][]byte) (n int, err error) {
	cerr := rc.Write(func(fd uintptr) bool {
		n, err = unix.Writev(int(fd), bufs)
		return true // done either way: never wait for writability here
	})
	if cerr != nil {
		return 0, cerr
	}
	if errors.Is(err, unix.EAGAIN) {
		return 0, nil
	}
	return max(n, 0), err
}
