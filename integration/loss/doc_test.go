// Package loss checks, across real processes, what the confirmed-publish
// protocol promises when a broker dies or stalls (docs/PROTOCOL.md
// §5.3.2): every publish a client saw confirmed reached the subscribers'
// sockets, every other one is counted exactly in a LostError or was never
// taken, resent publishes are not delivered twice, and a stalled broker
// never holds a caller past its context's deadline.
//
// The test binary is its own helper, as in package integration: TestMain
// runs a role (broker, sub, pub) instead of the tests when
// proctest.RoleEnv names one. Brokers are killed with SIGKILL, so nothing
// of theirs is flushed or shut down cleanly; publishers are paced by the
// test, which relays each subscriber's progress to its publisher's stdin,
// so that a kill always lands in the middle of a stream, never after it.
//
// The package has test files only, so internal/layout's import graph does
// not list it. The tests run on Linux: they use SIGSTOP and Pdeathsig.
package loss
