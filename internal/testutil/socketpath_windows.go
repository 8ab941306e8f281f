package testutil

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

var pipeSeq atomic.Int64

// SocketPath returns a named pipe, \\.\pipe\eventbus-test-<pid>-<n>,
// unique to this process and call. A pipe vanishes with its last handle, so
// there is nothing to remove: no directory is made, which also spares
// tests Wine's trouble removing directories (see scripts/wine).
func SocketPath(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf(`\\.\pipe\eventbus-test-%d-%d`, os.Getpid(), pipeSeq.Add(1))
}
