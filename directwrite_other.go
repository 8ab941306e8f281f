//go:build !linux && !darwin

package eventbus

import (
	"errors"
	"syscall"
)

// tryWrite is only implemented where x/sys/unix has Writev (linux,
// darwin); elsewhere the writer goroutine does every write.
func tryWrite(syscall.RawConn, [][]byte) (int, error) {
	return 0, errors.ErrUnsupported
}

const directWriteSupported = false
