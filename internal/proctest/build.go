package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// binaryPackage is what Binary builds.
const binaryPackage = "daemoneye.dev/eventbus/cmd/eventbus"

var built struct {
	sync.Mutex
	dir string // holds the binary; removed by Exit
}

// Build builds the eventbus binary, with the race detector if this test
// binary has it, into a temporary directory the first time it is called,
// and returns its path; later calls wait for and return the same result.
// Call Exit at the end of TestMain to remove it.
var Build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "eventbus-bin")
	if err != nil {
		return "", err
	}
	built.Lock()
	built.dir = dir
	built.Unlock()
	name := "eventbus"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	exe := filepath.Join(dir, name)
	args := []string{"build", "-o", exe}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, binaryPackage)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", binaryPackage, err, out)
	}
	return exe, nil
})

// Binary is Build, failing the test if the build fails.
func Binary(t testing.TB) string {
	t.Helper()
	exe, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// Exit removes what Build built and exits with code. TestMain ends with
// it, directly or as goleak.Cleanup(proctest.Exit).
func Exit(code int) {
	built.Lock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	built.Unlock()
	os.Exit(code)
}
