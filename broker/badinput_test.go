package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

const badHandshakeTimeout = 200 * time.Millisecond

func helloBytes() []byte {
	return wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "bad"})
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// header is a frame header claiming length n (type byte included).
func rawHeader(n uint32, typ wire.Type) []byte {
	return append(binary.BigEndian.AppendUint32(nil, n), byte(typ))
}

func rawFrame(typ wire.Type, body []byte) []byte {
	return append(wire.AppendHeader(nil, typ, len(body)), body...)
}

// closeWrite half-closes the raw connection, so that the broker reads EOF
// while the test can still read what it sends back. It reports false,
// having done nothing, if the transport has no half-close: a Windows named
// pipe in byte mode signals EOF only when its handle is closed. (go-winio's
// message-mode CloseWrite, a zero-byte write, is not seen by a byte-mode
// reader.)
func closeWrite(t *testing.T, raw *testutil.Raw) bool {
	t.Helper()
	uc, ok := raw.Conn().(*net.UnixConn)
	if !ok {
		return false
	}
	if err := uc.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	return true
}

// expectSilentClose fails unless the broker closes the connection without
// sending a byte.
func expectSilentClose(t *testing.T, raw *testutil.Raw) {
	t.Helper()
	raw.Conn().SetReadDeadline(time.Now().Add(testTimeout))
	b, err := io.ReadAll(raw.Conn())
	if err != nil && !testutil.IsClosed(err) {
		t.Fatalf("reading until close: %v", err)
	}
	if len(b) != 0 {
		t.Errorf("broker sent %d bytes (%q) before closing; want none", len(b), b[:min(len(b), 32)])
	}
}

// expectPreambleError reads the broker's preamble, then an ERROR frame
// with code (fatal), then the close.
func expectPreambleError(t *testing.T, raw *testutil.Raw, code wire.ErrorCode) {
	t.Helper()
	if v, err := raw.ReadPreamble(); err != nil || v != wire.Version {
		t.Fatalf("broker preamble: version %d, %v; want %d", v, err, wire.Version)
	}
	raw.ExpectError(code, true)
	raw.ExpectClosed()
}

// expectErrorsThenClose reads until the broker closes the connection,
// requiring at least one frame and that every ERROR frame says what was
// wrong. It is for input whose exact reading depends on random bytes.
func expectErrorsThenClose(t *testing.T, raw *testutil.Raw) {
	t.Helper()
	for {
		typ, body, err := raw.ReadFrame()
		if err != nil {
			if !testutil.IsClosed(err) {
				t.Fatalf("read: %v; want frames, then the connection closed", err)
			}
			return
		}
		if typ == wire.TypeError {
			var f wire.ErrorFrame
			if err := f.UnmarshalVT(body); err != nil || f.Message == "" {
				t.Errorf("ERROR frame %v (%v); want a message saying what was wrong", &f, err)
			}
		}
	}
}

// badCase is one kind of bad input for TestBadInput.
type badCase struct {
	name      string
	handshake bool // complete the handshake first
	send      []byte
	halfClose bool // then close the write side
	expect    func(t *testing.T, raw *testutil.Raw)
	timesOut  bool // the broker closes only at the handshake timeout
}

func TestBadInput(t *testing.T) {
	b, path := startBroker(t, Config{HandshakeTimeout: badHandshakeTimeout})
	// A normal pair that must keep working whatever the others send.
	pub := dial(t, path, eventbus.WithName("good-pub"))
	sub := dial(t, path, eventbus.WithName("good-sub"))
	s := subscribe(t, sub, "good.#")
	goodConns := b.Stats().Connections
	var seq uint64
	checkGood := func(t *testing.T) {
		t.Helper()
		seq++
		publish(t, pub, "good.x", seqPayload(seq, 8))
		m := recv(t, s)
		if got := seqOf(t, m); got != seq || m.Missed != 0 {
			t.Fatalf("good subscriber got message %d (missed %d); want %d", got, m.Missed, seq)
		}
	}

	tests := []badCase{
		{name: "random bytes seed 1", send: randomBytes(1, 4096),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_BAD_MAGIC)
			}},
		{name: "random bytes seed 2 short", send: randomBytes(2, 9), halfClose: true,
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_BAD_MAGIC)
			}},
		{name: "random bytes after handshake seed 3", handshake: true, send: randomBytes(3, 4096), halfClose: true,
			expect: expectErrorsThenClose},
		{name: "random bytes after handshake seed 4", handshake: true, send: randomBytes(4, 100), halfClose: true,
			expect: expectErrorsThenClose},
		{name: "wrong magic", send: append([]byte("EVTBUZ\x01\x00"), helloBytes()[wire.PreambleSize:]...),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_BAD_MAGIC)
			}},
		{name: "HTTP request", send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_BAD_MAGIC)
			}},
		{name: "wrong version 2", send: append(wire.AppendPreamble(nil, 2), helloBytes()[wire.PreambleSize:]...),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION)
			}},
		{name: "wrong version 0", send: wire.AppendPreamble(nil, 0),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION)
			}},
		{name: "truncated preamble then EOF", send: []byte("EVT"), halfClose: true, expect: expectSilentClose},
		{name: "truncated hello then EOF", send: append(wire.AppendPreamble(nil, wire.Version), append(rawHeader(100, wire.TypeHello), 1, 2, 3)...),
			halfClose: true, expect: expectSilentClose},
		{name: "4 GiB hello", send: append(wire.AppendPreamble(nil, wire.Version), rawHeader(0xFFFFFFFF, wire.TypeHello)...),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE)
			}},
		{name: "publish before hello", send: append(wire.AppendPreamble(nil, wire.Version), wire.AppendFrame(nil, wire.TypePublish, &wire.Envelope{Topic: "good.x"})...),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME)
			}},
		{name: "hello with invalid component", send: wire.AppendFrame(wire.AppendPreamble(nil, wire.Version), wire.TypeHello, &wire.Hello{Component: "Bad Component"}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_FORBIDDEN)
			}},
		{name: "malformed hello", send: append(wire.AppendPreamble(nil, wire.Version), rawFrame(wire.TypeHello, []byte{0x0a, 0x05, 'a'})...),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME)
			}},
		{name: "no hello within handshake timeout", expect: expectSilentClose, timesOut: true},
		{name: "preamble only, no hello within handshake timeout", send: wire.AppendPreamble(nil, wire.Version),
			expect: expectSilentClose, timesOut: true},
		{name: "truncated frame then EOF", handshake: true, send: append(rawHeader(100, wire.TypePublish), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
			halfClose: true, expect: func(t *testing.T, raw *testutil.Raw) { raw.ExpectClosed() }},
		{name: "truncated header then EOF", handshake: true, send: []byte{0, 0}, halfClose: true,
			expect: func(t *testing.T, raw *testutil.Raw) { raw.ExpectClosed() }},
		{name: "4 GiB frame", handshake: true, send: rawHeader(0xFFFFFFFF, wire.TypePublish),
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, true)
				raw.ExpectClosed()
			}},
		{name: "zero-length frame answered before a type byte", handshake: true, send: []byte{0, 0, 0, 0},
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, true)
				raw.ExpectClosed()
			}},
		{name: "hello with a client name of invalid UTF-8", send: wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "x\xff\x1b"}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				expectPreambleError(t, raw, wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME)
			}},
		{name: "query with invalid UTF-8", handshake: true,
			send: wire.AppendFrame(nil, wire.TypeQuery, &wire.Query{RequestId: 1, Kind: &wire.Query_Timeline{Timeline: "r\xff"}}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				if f := raw.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, true); !strings.Contains(f.Message, "UTF-8") {
					t.Errorf("ERROR %q does not say UTF-8", f.Message)
				}
				raw.ExpectClosed()
			}},
		{name: "subscribe with invalid UTF-8", handshake: true,
			send: wire.AppendFrame(nil, wire.TypeSubscribe, &wire.Subscribe{RequestId: 1, SubscriptionId: 1, Patterns: []string{"a.\xff"}}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, true)
				raw.ExpectClosed()
			}},
		{name: "publish to a topic of invalid UTF-8 is refused without echoing it", handshake: true,
			send: wire.AppendFrame(nil, wire.TypePublish, &wire.Envelope{Topic: "a.\xff\x1b"}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				if f := raw.ExpectError(wire.ErrorCode_ERROR_CODE_INVALID_TOPIC, false); !utf8.ValidString(f.Topic) || !utf8.ValidString(f.Message) {
					t.Errorf("ERROR topic %q, message %q: not valid UTF-8", f.Topic, f.Message)
				}
				raw.Ping(9)
			}},
		{name: "zero-length frame", handshake: true, send: []byte{0, 0, 0, 0, 3},
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, true)
				raw.ExpectClosed()
			}},
		{name: "deliver from a client", handshake: true,
			send: wire.AppendFrame(nil, wire.TypeDeliver, &wire.Deliver{SubscriptionId: 1, Envelope: &wire.Envelope{Topic: "good.x"}}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, true)
				raw.ExpectClosed()
			}},
		{name: "second hello", handshake: true, send: helloBytes()[wire.PreambleSize:],
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, true)
				raw.ExpectClosed()
			}},
		{name: "unknown frame type", handshake: true, send: rawFrame(200, []byte{1, 2}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, true)
				raw.ExpectClosed()
			}},
		{name: "malformed subscribe", handshake: true, send: rawFrame(wire.TypeSubscribe, []byte{0x1a, 0x10, 'a'}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				raw.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, true)
				raw.ExpectClosed()
			}},
		{name: "unsubscribe unknown id", handshake: true, send: wire.AppendFrame(nil, wire.TypeUnsubscribe, &wire.Unsubscribe{RequestId: 5, SubscriptionId: 99}),
			expect: func(t *testing.T, raw *testutil.Raw) {
				if f := raw.ExpectError(wire.ErrorCode_ERROR_CODE_UNKNOWN_SUBSCRIPTION, false); f.RequestId != 5 {
					t.Errorf("ERROR request_id = %d; want 5", f.RequestId)
				}
				raw.Ping(1)
			}},
	}
	// Publishes that set broker-owned fields or are otherwise malformed
	// are refused without closing the connection, and never delivered.
	for _, p := range []struct {
		name string
		body []byte
	}{
		{"publish with publisher_pid (17)", mustMarshal(&wire.Envelope{Topic: "good.x", Payload: []byte("spoof"), PublisherPid: 1})},
		{"publish with received_at (16)", mustMarshal(&wire.Envelope{Topic: "good.x", ReceivedAt: 1})},
		// proto3 would omit a zero publisher_uid: set the field by hand.
		{"publish with publisher_uid (18)", protowire.AppendVarint(protowire.AppendTag(mustMarshal(&wire.Envelope{Topic: "good.x"}), 18, protowire.VarintType), 0)},
		{"publish with publisher_component (19)", mustMarshal(&wire.Envelope{Topic: "good.x", PublisherComponent: "agent"})},
		{"publish with unknown field", protowire.AppendVarint(protowire.AppendTag(mustMarshal(&wire.Envelope{Topic: "good.x"}), 7, protowire.VarintType), 1)},
		{"publish with repeated topic", append(mustMarshal(&wire.Envelope{Topic: "good.x"}), mustMarshal(&wire.Envelope{Topic: "good.y"})...)},
		{"publish with wrong wire type", protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5)},
		{"publish truncated body", mustMarshal(&wire.Envelope{Topic: "good.x", Payload: []byte("abcdef")})[:10]},
	} {
		tests = append(tests, badCase{name: p.name, handshake: true, send: rawFrame(wire.TypePublish, p.body), expect: func(t *testing.T, raw *testutil.Raw) {
			if f := raw.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, false); f.PublishSeq != 1 {
				t.Errorf("ERROR publish_seq = %d; want 1", f.PublishSeq)
			}
			raw.Ping(1)
		}})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.Stats()
			var raw *testutil.Raw
			if tt.handshake {
				raw = testutil.HandshakeRaw(t, path)
			} else {
				raw = testutil.DialRaw(t, path)
			}
			start := time.Now()
			if len(tt.send) > 0 {
				raw.Write(tt.send)
			}
			switch {
			case !tt.halfClose:
				tt.expect(t, raw)
			case closeWrite(t, raw):
				tt.expect(t, raw)
			default:
				// No half-close (named pipes): hang up entirely, so the
				// broker still reads EOF where the case puts it, and check
				// that it lets the connection go. What it would have sent
				// back cannot be read.
				raw.Conn().Close()
				waitFor(t, "the broker to drop the connection after EOF", func() bool {
					return b.Stats().Connections == goodConns
				})
			}
			if tt.timesOut {
				if el := time.Since(start); el < badHandshakeTimeout*3/4 {
					t.Errorf("closed after %v; want the handshake timeout, %v", el, badHandshakeTimeout)
				}
			}
			checkGood(t)
			if s := drain(s); len(s) != 0 {
				t.Errorf("good subscriber received %q from the bad connection", topicsOf(s))
			}
			if after := b.Stats(); after.Connections > before.Connections+1 {
				t.Errorf("Connections = %d; want at most %d", after.Connections, before.Connections+1)
			}
		})
	}
}

func mustMarshal(m wire.Message) []byte {
	b := make([]byte, m.SizeVT())
	if _, err := m.MarshalToSizedBufferVT(b); err != nil {
		panic(err)
	}
	return b
}

// TestConnectionFlood opens 10,000 connections that hang up at once, at
// various points of the handshake; the broker must shed them all and keep
// serving.
func TestConnectionFlood(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("10,000 named-pipe connections are too slow under Wine (scripts/wine): " +
			"it accepts about one pipe connection per 10ms, so the flood takes minutes and 50 dialers " +
			"time out on a busy pipe; 250 from 4 dialers pass but sometimes leave a connection " +
			"the broker never sees close (Wine 8). The Unix socket flood runs on Linux and macOS.")
	}
	const (
		total   = 10000
		workers = 50
	)
	b, path := startBroker(t, Config{HandshakeTimeout: badHandshakeTimeout})
	pub := dial(t, path, eventbus.WithName("good-pub"))
	sub := dial(t, path, eventbus.WithName("good-sub"))
	s := subscribe(t, sub, "good.#")
	st0 := b.Stats()
	baseline := st0.Connections

	hello := helloBytes()
	var next, dialErrs, retries atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				nc, err := transport.Dial(ctx, path)
				for errors.Is(err, syscall.EAGAIN) {
					// The accept queue is full (the broker accepts slower
					// than 50 dialers connect): back off, as a client would.
					retries.Add(1)
					time.Sleep(time.Millisecond)
					nc, err = transport.Dial(ctx, path)
				}
				if err != nil {
					if dialErrs.Add(1) < 3 {
						t.Errorf("dial %d: %v", i, err)
					}
					continue
				}
				switch i % 4 {
				case 1:
					nc.Write(hello[:wire.PreambleSize])
				case 2:
					nc.Write(hello)
				case 3:
					nc.Write(hello[:len(hello)-1])
				}
				nc.Close()
			}
		})
	}
	wg.Wait()
	if n := dialErrs.Load(); n != 0 {
		t.Errorf("%d of %d dials failed; want 0", n, total)
	}

	// A dial returns once the connection is queued for accept, so the
	// broker may still be working through the backlog.
	var st stats.Snapshot
	waitFor(t, "every connection accepted and gone", func() bool {
		st = b.Stats()
		return st.ConnectionsTotal+st.ConnectionsRefused-st0.ConnectionsTotal-st0.ConnectionsRefused == total &&
			st.Connections == baseline
	})
	t.Logf("%d connections: %d accepted, %d refused (max_connections %d), %d dials retried on a full accept queue",
		total, st.ConnectionsTotal-st0.ConnectionsTotal, st.ConnectionsRefused, st.MaxConnections, retries.Load())
	// Still serving: the old pair and a new client.
	publish(t, pub, "good.flood", []byte("after"))
	if m := recv(t, s); m.Topic != "good.flood" {
		t.Errorf("received %q; want good.flood", m.Topic)
	}
	late := dial(t, path)
	ls := subscribe(t, late, "good.#")
	publish(t, pub, "good.late", nil)
	if m := recv(t, ls); m.Topic != "good.late" {
		t.Errorf("new client received %q; want good.late", m.Topic)
	}
	b.mu.Lock()
	remote := b.remote
	b.mu.Unlock()
	if remote != baseline+1 {
		t.Errorf("broker counts %d remote connections; want %d", remote, baseline+1)
	}
}
