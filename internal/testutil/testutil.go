// Package testutil starts brokers on short temporary sockets (named pipes
// on Windows) and speaks the raw wire protocol, for tests that must bypass
// the client.
//
// It does not import package eventbus, so that package's own (white-box)
// tests can use it: a broker is anything with Serve and Close.
package testutil

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// Timeout bounds every wait in these helpers. It is a failure bound, not a
// synchronisation delay: waits end as soon as what they wait for happens.
const Timeout = 10 * time.Second

// Server is what Serve runs; *broker.Broker satisfies it.
type Server interface {
	Serve(net.Listener) error
	Close() error
}

// Running is a server serving a listener on its own goroutine.
type Running struct {
	Path string
	done chan struct{}
	err  error
}

// Done is closed when Serve has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Wait waits for Serve to return and returns its error; it fails the test
// if Serve does not return within Timeout.
func (r *Running) Wait(t testing.TB) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(Timeout):
		t.Fatalf("Serve did not return within %v", Timeout)
		return nil
	}
}

// SocketDir returns a new private temporary directory whose path is short
// enough for a socket in it to fit sun_path (104 bytes on macOS and
// FreeBSD), for tests that keep files beside the socket (a policy, the
// agent token). It is removed, as far as it can be (Wine fails to remove
// directories: scripts/wine), when the test ends.
func SocketDir(t testing.TB) string {
	t.Helper()
	// t.TempDir() embeds the test name and can exceed sun_path.
	dir, err := os.MkdirTemp("", "eb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Serve listens on a fresh socket path and serves srv there on a
// goroutine. When the test ends it closes srv and waits for Serve to
// return.
func Serve(t testing.TB, srv Server) *Running {
	t.Helper()
	return ServeAt(t, srv, SocketPath(t))
}

// ServeAt is Serve on a given path.
func ServeAt(t testing.TB, srv Server, path string) *Running {
	t.Helper()
	ln, err := transport.Listen(path)
	if err != nil {
		t.Fatalf("transport.Listen(%q): %v", path, err)
	}
	r := &Running{Path: path, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-r.done:
		case <-time.After(Timeout):
			t.Errorf("Serve did not return within %v of Close", Timeout)
		}
	})
	return r
}

// Raw is a client connection that speaks frames directly, for sending what
// the eventbus client never would.
type Raw struct {
	t  testing.TB
	nc net.Conn
	r  *wire.Reader
}

// DialRaw connects to path without a handshake. The connection is closed
// when the test ends.
func DialRaw(t testing.TB, path string) *Raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	nc, err := transport.Dial(ctx, path)
	if err != nil {
		t.Fatalf("transport.Dial(%q): %v", path, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Raw{t: t, nc: nc, r: wire.NewReader(bufio.NewReaderSize(nc, 64<<10), 80<<20)}
}

// HandshakeRaw dials path and completes the handshake.
func HandshakeRaw(t testing.TB, path string) *Raw {
	t.Helper()
	c := DialRaw(t, path)
	c.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "raw"}))
	c.ReadHandshake()
	return c
}

// Conn is the underlying connection.
func (c *Raw) Conn() net.Conn { return c.nc }

// Write writes b. A write error fails the test unless the broker closed
// the connection first (it may, after refusing what came before).
func (c *Raw) Write(b []byte) error {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(Timeout))
	_, err := c.nc.Write(b)
	if err != nil && !IsClosed(err) {
		c.t.Fatalf("raw write: %v", err)
	}
	return err
}

// Send writes one frame.
func (c *Raw) Send(typ wire.Type, m wire.Message) {
	c.t.Helper()
	c.Write(wire.AppendFrame(nil, typ, m))
}

// ReadHandshake reads the broker's preamble and HELLO_OK.
func (c *Raw) ReadHandshake() *wire.HelloOK {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(Timeout))
	ok, err := wire.ReadHelloOK(c.r)
	if err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	return ok
}

// ReadPreamble reads the broker's preamble.
func (c *Raw) ReadPreamble() (uint8, error) {
	c.nc.SetReadDeadline(time.Now().Add(Timeout))
	return c.r.ReadPreamble()
}

// ReadFrame reads the next frame within Timeout. The body is a copy.
func (c *Raw) ReadFrame() (wire.Type, []byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(Timeout))
	typ, body, err := c.r.ReadFrame()
	return typ, append([]byte(nil), body...), err
}

// Expect reads the next frame and fails the test unless it has type typ.
func (c *Raw) Expect(typ wire.Type) []byte {
	c.t.Helper()
	got, body, err := c.ReadFrame()
	if err != nil {
		c.t.Fatalf("reading %v frame: %v", typ, err)
	}
	if got != typ {
		c.t.Fatalf("frame type = %v (%s); want %v", got, describe(got, body), typ)
	}
	return body
}

// ExpectError reads the next frame and fails the test unless it is an
// ERROR frame with the given code and fatality.
func (c *Raw) ExpectError(code wire.ErrorCode, fatal bool) *wire.ErrorFrame {
	c.t.Helper()
	var f wire.ErrorFrame
	if err := f.UnmarshalVT(c.Expect(wire.TypeError)); err != nil {
		c.t.Fatalf("ERROR frame: %v", err)
	}
	if f.Code != code || f.Fatal != fatal {
		c.t.Fatalf("ERROR frame = %v fatal=%v (%q); want %v fatal=%v", f.Code, f.Fatal, f.Message, code, fatal)
	}
	if f.Message == "" {
		c.t.Errorf("ERROR frame %v has no message saying what was wrong", f.Code)
	}
	return &f
}

// ExpectClosed fails the test unless the broker closes the connection
// (EOF or reset) within Timeout without sending another frame.
func (c *Raw) ExpectClosed() {
	c.t.Helper()
	typ, body, err := c.ReadFrame()
	if err == nil {
		c.t.Fatalf("read %v frame (%s); want the connection closed", typ, describe(typ, body))
	}
	if !IsClosed(err) {
		c.t.Fatalf("read error %v; want EOF or reset (connection closed)", err)
	}
}

// Ping sends a PING and waits for its PONG, skipping DELIVER and MISSED
// frames; it proves the broker still serves this connection.
func (c *Raw) Ping(id uint64) {
	c.t.Helper()
	c.Send(wire.TypePing, &wire.Ping{Id: id})
	for {
		typ, body, err := c.ReadFrame()
		if err != nil {
			c.t.Fatalf("waiting for PONG %d: %v", id, err)
		}
		switch typ {
		case wire.TypeDeliver, wire.TypeMissed:
			continue
		case wire.TypePong:
			var p wire.Pong
			if err := p.UnmarshalVT(body); err != nil || p.Id != id {
				c.t.Fatalf("PONG = %v, %v; want id %d", p.Id, err, id)
			}
			return
		default:
			c.t.Fatalf("waiting for PONG %d: got %v (%s)", id, typ, describe(typ, body))
		}
	}
}

// IsClosed reports whether err means the peer closed the connection.
func IsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func describe(typ wire.Type, body []byte) string {
	if typ == wire.TypeError {
		var f wire.ErrorFrame
		if f.UnmarshalVT(body) == nil {
			return f.Code.String() + ": " + f.Message
		}
	}
	return typ.String()
}

// UserEntry returns the policy-file field that admits this process's own
// user to a component: "sids: [S-1-...]" on Windows, whose peers have no
// uid, and "uids: [N]" elsewhere. Tests that write policies use it so that
// they hold on every OS.
func UserEntry(t testing.TB) string {
	t.Helper()
	self, err := transport.Self()
	if err != nil {
		t.Fatal(err)
	}
	if self.SID != "" {
		return "sids: [" + self.SID + "]"
	}
	return "uids: [" + strconv.FormatUint(uint64(self.UID), 10) + "]"
}
