package acl

import (
	"encoding/hex"
	"os"
	"path/filepath"
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

// checkNewToken checks what EnsureTokenFile returned for a new token file
// at path, on any OS: 32 hex-encoded random bytes, the same token on the
// next call and from ReadTokenFile, and no temporary file left beside it.
func checkNewToken(t *testing.T, path string, tok []byte) {
	t.Helper()
	if raw, err := hex.DecodeString(string(tok)); err != nil || len(raw) != 32 {
		t.Errorf("token %q is not 32 hex-encoded bytes", tok)
	}
	again, err := EnsureTokenFile(path)
	if err != nil || string(again) != string(tok) {
		t.Errorf("second EnsureTokenFile = %q, %v; want the same token %q", again, err, tok)
	}
	if read, err := ReadTokenFile(path); err != nil || string(read) != string(tok) {
		t.Errorf("ReadTokenFile = %q, %v; want %q", read, err, tok)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries; want just the token (no temporary files)", len(entries))
	}
}
