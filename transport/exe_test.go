package transport

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPeerExeSelf checks that exeOf reads this process's executable
// where the OS reveals one the peer cannot forge (Linux, FreeBSD, Windows),
// as os.Executable names it, and nothing for pids that name no process.
func TestPeerExeSelf(t *testing.T) {
	switch runtime.GOOS {
	case "linux", "freebsd", "windows":
	default:
		if got := exeOf(os.Getpid()); got != "" {
			t.Errorf("exeOf(self) on %s = %q; want \"\" (no implementation)", runtime.GOOS, got)
		}
		t.Skipf("exeOf reads no executable on %s", runtime.GOOS)
	}
	want, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := exeOf(os.Getpid())
	if got == "" {
		t.Fatalf("exeOf(%d) = \"\"; want %s", os.Getpid(), want)
	}
	if !filepath.IsAbs(got) {
		t.Errorf("exeOf(self) = %q: not absolute", got)
	}
	if !sameFile(t, got, want) {
		t.Errorf("exeOf(self) = %q; os.Executable() = %q", got, want)
	}
	for _, pid := range []int{0, -1} {
		if got := exeOf(pid); got != "" {
			t.Errorf("exeOf(%d) = %q; want \"\"", pid, got)
		}
	}
}

// sameFile reports whether paths a and b name the same file after
// resolving symlinks, ignoring case on Windows.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	ra, err := filepath.EvalSymlinks(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := filepath.EvalSymlinks(b)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		return strings.EqualFold(ra, rb)
	}
	return ra == rb
}
