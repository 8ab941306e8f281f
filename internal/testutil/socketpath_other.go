//go:build !windows

package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// SocketPath returns a socket path in a new private temporary directory,
// short enough for sun_path (104 bytes on macOS and FreeBSD), removed when
// the test ends. On Windows it returns a named pipe instead.
func SocketPath(t testing.TB) string {
	t.Helper()
	// t.TempDir() embeds the test name and can exceed sun_path.
	dir, err := os.MkdirTemp("", "eb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}
