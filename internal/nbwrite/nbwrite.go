// Package nbwrite writes to a socket without blocking: one writev on its
// non-blocking descriptor, taking what the kernel accepts now. The broker
// uses it to write to an idle subscriber from the publisher's reader
// goroutine, and the client to write a publish from the caller's
// goroutine, sparing a goroutine handoff per message at low rates.
package nbwrite

import (
	"net"
	"syscall"
)

// RawConn returns nc's raw descriptor access, or nil where nc has none
// (net.Pipe, Windows named pipes): callers then leave every write to
// their writer goroutine.
func RawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
