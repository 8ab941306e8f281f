//go:build !windows

package testutil

import (
	"path/filepath"
	"testing"
)

// SocketPath returns a socket path in a new SocketDir. On Windows it
// returns a named pipe instead.
func SocketPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(SocketDir(t), "s")
}
