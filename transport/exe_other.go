//go:build !linux && !freebsd && !windows

package transport

// exeOf is empty where the OS does not reveal a peer's executable in a
// form the peer cannot forge: a policy that names executables refuses such
// peers (fails closed). On macOS the only path reachable without cgo or
// unsafe code (the kern.procargs2 sysctl) is copied from the peer's own
// writable memory, so it is not read.
func exeOf(int) string { return "" }
