package acl

import (
	"os"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tempDir is t.TempDir, except that on Windows a failure to remove the
// directory when the test ends is ignored rather than failing the test:
// under Wine (scripts/wine), os.RemoveAll fails, which would fail every
// test that used t.TempDir.
func tempDir(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "windows" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "eventbus-acl-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // best effort; see above
	return dir
}
