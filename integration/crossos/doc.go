// Package crossos holds the process tests that run on every OS the broker
// supports, Windows included: a broker, publishers and subscribers as
// separate OS processes over the platform's endpoint (a Unix socket, or a
// named pipe on Windows).
//
// The test binary is its own helper, as in package integration: TestMain
// runs a role (broker, sub, pub or peer) when proctest.RoleEnv names one.
// Nothing here uses signals, /proc or files, which Windows (and Wine, which
// runs the Windows build on Linux: scripts/wine/test.sh) lack or handle
// differently: processes are stopped by closing their stdin, and the
// access policy travels in the environment.
package crossos
