//go:build !linux && !darwin

package nbwrite

import (
	"errors"
	"syscall"
)

// Supported reports whether TryWrite can write on this OS: only where
// x/sys/unix has Writev (linux, darwin). Elsewhere the writer goroutine
// does every write.
const Supported = false

// TryWrite always fails with errors.ErrUnsupported here.
func TryWrite(syscall.RawConn, [][]byte) (int, error) {
	return 0, errors.ErrUnsupported
}
