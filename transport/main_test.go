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
	goleak.VerifyTestMain(m)
}
