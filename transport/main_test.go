package transport

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// helperEnv switches the test binary into a helper process (see helperMain),
// so tests can act as another user.
const helperEnv = "EVENTBUS_TRANSPORT_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	// go-winio serves every pipe's I/O from one goroutine that it starts
	// on first use and never stops (Windows only).
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/Microsoft/go-winio.ioCompletionProcessor"))
}
