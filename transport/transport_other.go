//go:build !linux && !darwin && !freebsd && !windows

package transport

import (
	"context"
	"net"
	"runtime"
)

// Systems without a transport yet: other Unix systems need a peer
// credential call (peer_GOOS.go) and a sys_GOOS.go to join transport_unix.go.

func listen(string, listenConfig) (net.Listener, error) { return nil, unsupported() }

func dial(context.Context, string) (net.Conn, error) { return nil, unsupported() }

func peerOf(net.Conn) (Peer, error) { return Peer{}, unsupported() }

func unsupported() error {
	return newError(ErrUnsupported, nil, "%s is not supported yet (Linux, macOS, FreeBSD and Windows are; see README)", runtime.GOOS)
}

func resolveDial(string, *dialConfig) error { return unsupported() }

func verifyServer(net.Conn, string, dialConfig) error { return unsupported() }
