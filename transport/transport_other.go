//go:build !linux

package transport

import (
	"context"
	"net"
	"runtime"
)

// A later issue implements darwin and freebsd (Unix sockets with their own
// peer credential calls) and windows (a named pipe with an owner-only
// security descriptor, SPEC.md §7).

func listen(string, listenConfig) (net.Listener, error) { return nil, unsupported() }

func dial(context.Context, string) (net.Conn, error) { return nil, unsupported() }

func peerOf(net.Conn) (Peer, error) { return Peer{}, unsupported() }

func unsupported() error {
	return newError(ErrUnsupported, nil, "%s is not supported yet (Linux only; see README)", runtime.GOOS)
}
