package crossos

import (
	"testing"
	"time"

	"daemoneye.dev/eventbus/internal/proctest"
)

// waitTimeout bounds every wait for a helper's output or exit: a failure
// bound, not a delay. Wine starts processes slowly, so it is generous.
const waitTimeout = 60 * time.Second

// start runs the test binary as role with args. When the test ends the
// process's stdin is closed (a broker's signal to shut down) and it is
// waited for, and killed if it has not exited within waitTimeout.
func start(t *testing.T, name, role string, env []string, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, proctest.Cmd{Role: role, Name: name, Env: env, Args: args, Grace: waitTimeout})
}
