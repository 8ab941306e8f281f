// Package transporttest is the conformance suite that every transport in
// package transport passes: one set of tests for listening, dialing, peer
// identity, access control, stale and live endpoints, large frames, many
// connections at once and close, run by each system's tests with a
// [Factory] describing what differs there.
//
// The suite calls [transport.Listen], [transport.Dial] and
// [transport.PeerOf], so it tests the transport of the system it runs on.
// It closes everything it opens and waits for every goroutine it starts, so
// it can run under go.uber.org/goleak.
package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus/transport"
)

// Factory describes one system's transport to [Run].
type Factory struct {
	// Addr returns a fresh address (a socket path, a pipe name) that
	// nobody listens on, unique to t and valid until t ends.
	Addr func(t *testing.T) string

	// Self is the identity PeerOf must report for either end of a
	// connection this process made to itself. Its PID is os.Getpid()
	// wherever the system reveals the peer's pid.
	Self transport.Peer

	// Exe is the executable PeerOf must report with Self (Self.Exe stays
	// empty, as Self() reports it): os.Executable() where the system
	// reveals a peer's executable, else "".
	Exe string

	// CheckAccess, if set, is called with a listener made with default
	// options and its address, and fails t unless access to the endpoint
	// is limited as the package documentation promises (a 0600 socket
	// file, a pipe's owner-only security descriptor).
	CheckAccess func(t *testing.T, ln net.Listener, addr string)

	// Deny, if set, is a ListenOption that shuts this process out, so
	// that Dial must fail with transport.ErrPermission. Nil skips the test
	// (root ignores a socket's mode).
	Deny transport.ListenOption

	// Invalid are ListenOptions that Listen must reject.
	Invalid []transport.ListenOption

	// MakeStale, if set, leaves at addr what a broker that crashed leaves
	// behind (a socket file nobody listens on); Listen must replace it.
	// Nil where an endpoint cannot outlive its listener (named pipes).
	MakeStale func(t *testing.T, addr string)

	// Expect is a DialOption that names the user this process runs as:
	// Dial with it to this process's own listener must succeed.
	Expect transport.DialOption

	// Untrusted, if set, is a DialOption that names another user: Dial
	// with it to this process's own listener must fail with
	// transport.ErrUntrustedBroker, having sent nothing. Nil skips the
	// test where this process is trusted whatever is expected (root, an
	// administrator).
	Untrusted transport.DialOption
}

const (
	// timeout bounds every blocking step, so a broken transport fails the
	// test instead of hanging it.
	timeout = 30 * time.Second
	// largeFrame is the size of the large-frame round trip.
	largeFrame = 4 << 20
	// concurrentClients is how many clients dial and echo at once.
	concurrentClients = 20
)

// Run runs the conformance suite against the transport of this system.
func Run(t *testing.T, f Factory) {
	if f.Addr == nil {
		t.Fatal("transporttest.Run: Factory.Addr is nil")
	}
	tests := []struct {
		name string
		run  func(*testing.T, Factory)
	}{
		{"ListenDial", testListenDial},
		{"PeerIdentity", testPeerIdentity},
		{"PeerOfOtherConn", testPeerOfOtherConn},
		{"Access", testAccess},
		{"InvalidOptions", testInvalidOptions},
		{"StaleEndpoint", testStaleEndpoint},
		{"LiveEndpoint", testLiveEndpoint},
		{"DialNoBroker", testDialNoBroker},
		{"DialExpected", testDialExpected},
		{"DialUntrusted", testDialUntrusted},
		{"DialCanceled", testDialCanceled},
		{"LargeFrames", testLargeFrames},
		{"ConcurrentConns", testConcurrentConns},
		{"CloseUnblocksAccept", testCloseUnblocksAccept},
		{"Close", testClose},
		{"CloseKeepsConns", testCloseKeepsConns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, f) })
	}
}

func testListenDial(t *testing.T, f Factory) {
	addr := f.Addr(t)
	ln := listen(t, addr)
	if ln.Addr() == nil {
		t.Error("Addr() = nil")
	}
	client, server := connect(t, ln, addr)
	roundTrip(t, client, server, []byte("ping"))
	roundTrip(t, server, client, []byte("pong"))
}

func testPeerIdentity(t *testing.T, f Factory) {
	addr := f.Addr(t)
	ln := listen(t, addr)
	client, server := connect(t, ln, addr)
	for name, conn := range map[string]net.Conn{"accepted": server, "dialed": client} {
		got, err := transport.PeerOf(conn)
		exe := got.Exe
		got.Exe = ""
		if err != nil || got != f.Self {
			t.Errorf("PeerOf(%s conn) = %+v, %v; want %+v", name, got, err, f.Self)
		}
		if (exe == "") != (f.Exe == "") || (exe != "" && !sameFile(t, exe, f.Exe)) {
			t.Errorf("PeerOf(%s conn).Exe = %q; want %q", name, exe, f.Exe)
		}
	}
	if pid := os.Getpid(); f.Self.PID != 0 && f.Self.PID != pid {
		t.Errorf("Factory.Self.PID = %d; want os.Getpid() = %d", f.Self.PID, pid)
	}
	server.Close()
	if got, err := transport.PeerOf(server); err == nil {
		t.Errorf("PeerOf(closed conn) = %+v, nil; want an error", got)
	}
}

func testPeerOfOtherConn(t *testing.T, _ Factory) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	for name, conn := range map[string]net.Conn{"net.Pipe": a, "nil": nil} {
		if got, err := transport.PeerOf(conn); !errors.Is(err, transport.ErrUnsupported) {
			t.Errorf("PeerOf(%s) = %+v, %v; want an error matching ErrUnsupported", name, got, err)
		}
	}
}

func testAccess(t *testing.T, f Factory) {
	t.Run("default", func(t *testing.T) {
		if f.CheckAccess == nil {
			t.Skip("no access check for this transport")
		}
		addr := f.Addr(t)
		f.CheckAccess(t, listen(t, addr), addr)
	})
	t.Run("deny", func(t *testing.T) {
		if f.Deny == nil {
			t.Skip("no way to shut this process out here")
		}
		addr := f.Addr(t)
		ln := listen(t, addr, f.Deny)
		// With an Accept pending, so that a pipe has an instance free
		// and only its security descriptor can keep the client out.
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			if conn, err := ln.Accept(); err == nil {
				conn.Close()
			}
		}()
		conn, err := dial(t, addr)
		ln.Close()
		<-accepted
		if err == nil {
			conn.Close()
			t.Fatal("Dial succeeded; want ErrPermission")
		}
		if !errors.Is(err, transport.ErrPermission) || !errors.Is(err, os.ErrPermission) ||
			!strings.Contains(err.Error(), addr) {
			t.Errorf("Dial = %v; want ErrPermission and os.ErrPermission naming %s", err, addr)
		}
	})
}

func testInvalidOptions(t *testing.T, f Factory) {
	opts := append([]transport.ListenOption{transport.WithMode(fs.ModeDir | 0o600)}, f.Invalid...)
	for i, opt := range opts {
		addr := f.Addr(t)
		ln, err := transport.Listen(addr, opt)
		if err == nil {
			ln.Close()
			t.Errorf("Listen with invalid option #%d succeeded", i)
			continue
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("Listen with invalid option #%d = %v; want an error naming %s", i, err, addr)
		}
		if conn, err := dial(t, addr); !errors.Is(err, transport.ErrNoBroker) {
			if conn != nil {
				conn.Close()
			}
			t.Errorf("Dial after a failed Listen = %v; want ErrNoBroker", err)
		}
	}
}

func testStaleEndpoint(t *testing.T, f Factory) {
	if f.MakeStale == nil {
		t.Skip("endpoints of this transport cannot outlive their listener")
	}
	addr := f.Addr(t)
	f.MakeStale(t, addr)
	if conn, err := dial(t, addr); !errors.Is(err, transport.ErrNoBroker) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("Dial to a stale endpoint = %v; want ErrNoBroker", err)
	}
	ln := listen(t, addr)
	client, server := connect(t, ln, addr)
	roundTrip(t, client, server, []byte("fresh"))
}

func testLiveEndpoint(t *testing.T, f Factory) {
	addr := f.Addr(t)
	ln := listen(t, addr)
	// With an Accept pending, as a serving broker has: a pipe then has an
	// instance free, through which the second Listen learns who holds it.
	// The first connection accepted may be that probe, closed at once.
	msg := []byte("still here")
	accepted := make(chan error, 1)
	go func() { accepted <- acceptMessage(ln, msg, 2) }()
	ln2, err := transport.Listen(addr)
	if err == nil {
		ln2.Close()
		ln.Close() // ends acceptMessage
		<-accepted
		t.Fatal("second Listen succeeded; want ErrBrokerRunning")
	}
	want := fmt.Sprintf("transport: a broker (pid %d) is already listening at %s", os.Getpid(), addr)
	if !errors.Is(err, transport.ErrBrokerRunning) || err.Error() != want {
		t.Errorf("second Listen = %v; want %q matching ErrBrokerRunning", err, want)
	}
	// The first listener still works.
	client, err := dial(t, addr)
	if err != nil {
		ln.Close() // ends acceptMessage
		<-accepted
		t.Fatalf("Dial(%q) to the first listener = %v", addr, err)
	}
	defer client.Close()
	if _, err := client.Write(msg); err != nil {
		t.Errorf("Write = %v", err)
	}
	if err := <-accepted; err != nil {
		t.Errorf("first listener: %v", err)
	}
}

// acceptMessage accepts up to n connections until one carries msg.
func acceptMessage(ln net.Listener, msg []byte, n int) error {
	for range n {
		conn, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("Accept() = %w", err)
		}
		conn.SetDeadline(time.Now().Add(timeout))
		got := make([]byte, len(msg))
		_, err = io.ReadFull(conn, got)
		conn.Close()
		if err == nil && bytes.Equal(got, msg) {
			return nil
		}
	}
	return fmt.Errorf("no connection among the first %d accepted carried %q", n, msg)
}

func testDialNoBroker(t *testing.T, f Factory) {
	addr := f.Addr(t)
	conn, err := dial(t, addr)
	if err == nil {
		conn.Close()
		t.Fatal("Dial succeeded; want ErrNoBroker")
	}
	want := "transport: no broker is listening at " + addr + " (is `eventbus broker` running?)"
	if !errors.Is(err, transport.ErrNoBroker) || err.Error() != want {
		t.Errorf("Dial = %v; want %q matching ErrNoBroker", err, want)
	}
}

func testDialCanceled(t *testing.T, f Factory) {
	addr := f.Addr(t)
	listen(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	conn, err := transport.Dial(ctx, addr)
	if err == nil {
		conn.Close()
		t.Fatal("Dial with a canceled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a canceled context = %v; want context.Canceled", err)
	}
}

// sameFile reports whether paths a and b name the same file after
// resolving symlinks, ignoring case on Windows.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	ra, err := filepath.EvalSymlinks(a)
	if err != nil {
		t.Errorf("EvalSymlinks(%q): %v", a, err)
		return false
	}
	rb, err := filepath.EvalSymlinks(b)
	if err != nil {
		t.Errorf("EvalSymlinks(%q): %v", b, err)
		return false
	}
	if runtime.GOOS == "windows" {
		return strings.EqualFold(ra, rb)
	}
	return ra == rb
}
