//go:build linux

package hostile_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/wire"
)

// TestProtocolEdges: frames at the edges of docs/PROTOCOL.md that a
// hostile peer sends to confuse the broker or, through it, other peers.
//
// Bound: a length-0 frame is a fatal MALFORMED_FRAME at once, from its
// four length bytes alone (PROTOCOL.md §3), and the connection closes; a
// HELLO with a string that is not valid UTF-8 is refused with a fatal
// MALFORMED_FRAME; a publish to a topic that is not valid UTF-8 is
// refused, the connection carries on, and the ERROR never echoes the
// invalid bytes (its topic field is valid UTF-8).
func TestProtocolEdges(t *testing.T) {
	b := startBroker(t)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"zero-length frame", func(t *testing.T) {
			r := testutil.HandshakeRaw(t, b.Path)
			r.Write([]byte{0, 0, 0, 0}) // and nothing more: no type byte to wait for
			f := r.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, true)
			if !strings.Contains(f.Message, "length 0") {
				t.Errorf("refusal %q; want it to say the frame has length 0", f.Message)
			}
			r.ExpectClosed()
		}},
		{"hello with an invalid UTF-8 client name", func(t *testing.T) {
			r := testutil.DialRaw(t, b.Path)
			r.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "raw\xff\xfe"}))
			expectRefusal(t, r, "client_name")
		}},
		{"hello with an invalid UTF-8 component", func(t *testing.T) {
			r := testutil.DialRaw(t, b.Path)
			r.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "raw", Component: "procmond\xc0"}))
			expectRefusal(t, r, "component")
		}},
		{"publish to an invalid UTF-8 topic", func(t *testing.T) {
			r := testutil.HandshakeRaw(t, b.Path)
			for i, topicName := range []string{"events.\xff.anomaly", "events.process.anomaly\xe2\x80", strings.Repeat("\xff", 300)} {
				r.Send(wire.TypePublish, &wire.Envelope{Topic: topicName, Payload: []byte("p")})
				// Decoding checks nothing about UTF-8 here; the test does.
				f, err := errorFrame(r.Expect(wire.TypeError))
				if err != nil {
					t.Fatal(err)
				}
				if f.Fatal || f.PublishSeq != uint64(i+1) || f.Code != wire.ErrorCode_ERROR_CODE_INVALID_TOPIC {
					t.Errorf("publish %d to %q refused with %v fatal=%v seq %d (%q); want a non-fatal INVALID_TOPIC for publish %d",
						i+1, topicName, f.Code, f.Fatal, f.PublishSeq, f.Message, i+1)
				}
				if !utf8.ValidString(f.Topic) || !utf8.ValidString(f.Message) {
					t.Errorf("publish %d: ERROR topic %q, message %q; want valid UTF-8, never the invalid bytes echoed", i+1, f.Topic, f.Message)
				}
			}
			r.Ping(1) // the connection carries on
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// expectRefusal reads the broker's refusal of a HELLO: its preamble, then a
// fatal MALFORMED_FRAME naming field; then the connection closes.
func expectRefusal(t *testing.T, r *testutil.Raw, field string) {
	t.Helper()
	if _, err := r.ReadPreamble(); err != nil {
		t.Fatalf("reading the broker's preamble: %v", err)
	}
	f := r.ExpectError(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, true)
	if !strings.Contains(f.Message, field) || !utf8.ValidString(f.Message) {
		t.Errorf("refusal %q; want valid UTF-8 naming the field %s", f.Message, field)
	}
	r.ExpectClosed()
}
