package crossos

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"daemoneye.dev/eventbus/internal/proctest"
)

// envPolicy is the broker helper's policy YAML; empty for the built-in
// policy. proctest.RoleEnv names the role: broker, sub, pub or peer.
const envPolicy = "EVENTBUS_CROSSOS_POLICY"

// helperLifetime bounds a helper process's life, so that none outlives a
// test that crashed before stopping it.
const helperLifetime = 2 * time.Minute

func TestMain(m *testing.M) {
	if role := proctest.Role(); role != "" {
		time.AfterFunc(helperLifetime, func() {
			fmt.Fprintf(os.Stderr, "%s %d: still running after %v; exiting\n", role, os.Getpid(), helperLifetime)
			os.Exit(3)
		})
		os.Exit(runHelper(role, os.Args[1:]))
	}
	// go-winio serves pipe I/O from a goroutine that never stops (Windows).
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/Microsoft/go-winio.ioCompletionProcessor"))
}
