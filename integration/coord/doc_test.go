// Package coord checks, across real processes, what requests and queue
// groups promise (docs/PROTOCOL.md §5.9): each task given to a queue group
// is answered exactly once even when a member is SIGKILLed holding some;
// a request nobody serves fails at once, and one nobody answers at its
// deadline; a reply reaches only its requester, and a reply from a
// connection that does not hold the request, even one naming the right
// token, is dropped.
//
// The test binary is its own helper, as in packages integration and
// integration/loss: TestMain runs a role (broker, member, requester,
// silent, echo, monitor) instead of the tests when proctest.RoleEnv names
// one. Every wait is for a line a helper prints; timeouts are failure
// bounds, never delays.
//
// The package has test files only, so internal/layout's import graph does
// not list it. The tests run on Linux: they use SIGKILL and Pdeathsig.
package coord
