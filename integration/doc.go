// Package integration holds tests that run the broker, publishers and
// subscribers as separate OS processes.
//
// The test binary is its own helper: TestMain runs a role (broker, pub, sub,
// peer, and for the correlation tests collector, agent, query and emit)
// instead of the tests when proctest.RoleEnv names one, so the tests need
// nothing built beforehand. Only TestCorrelationForensicTags builds the
// eventbus binary (proctest.Binary) to check its history command.
// The tests run on Linux: they read /proc and use Pdeathsig and SIGSTOP.
// Package crossos, below this one, holds process tests that run on every
// OS, Windows (under Wine in CI) included.
package integration
