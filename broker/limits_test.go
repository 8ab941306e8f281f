package broker

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/wire"
)

func TestPublishLocalLimits(t *testing.T) {
	b, path := startBroker(t, Config{})
	pub := dial(t, path)
	sub := dial(t, path)
	s := subscribe(t, sub, "#")
	inproc := inProcess(t, b)

	tests := []struct {
		name    string
		topic   string
		payload []byte
		want    error // nil: accepted and delivered
	}{
		{"1 MiB payload", "big.ok", bytes.Repeat([]byte{0xab}, DefaultMaxMessageSize), nil},
		{"1 MiB + 1 payload", "big.refused", make([]byte, DefaultMaxMessageSize+1), eventbus.ErrMessageTooLarge},
		{"empty payload", "empty.ok", nil, nil},
		{"uppercase topic", "Events.x", []byte("x"), eventbus.ErrInvalidTopic},
		{"empty segment", "a..b", []byte("x"), eventbus.ErrInvalidTopic},
		{"trailing dot", "a.b.", []byte("x"), eventbus.ErrInvalidTopic},
		{"wildcard topic", "a.+", []byte("x"), eventbus.ErrInvalidTopic},
		{"empty topic", "", []byte("x"), eventbus.ErrInvalidTopic},
		{"nine segments", "a.b.c.d.e.f.g.h.i", []byte("x"), eventbus.ErrInvalidTopic},
		{"reserved topic", "$sys.x", []byte("x"), eventbus.ErrReservedTopic},
	}
	for _, c := range []struct {
		name string
		c    *eventbus.Client
	}{{"socket", pub}, {"in process", inproc}} {
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				err := c.c.Publish(testCtx(t), tt.topic, tt.payload)
				if tt.want == nil {
					if err != nil {
						t.Fatalf("Publish(%q, %d bytes) = %v; want nil", tt.topic, len(tt.payload), err)
					}
					m := recv(t, s)
					if m.Topic != tt.topic || !bytes.Equal(m.Payload, tt.payload) {
						t.Errorf("received %q with %d bytes; want %q with %d bytes", m.Topic, len(m.Payload), tt.topic, len(tt.payload))
					}
					return
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("Publish(%q, %d bytes) = %v; want %v", tt.topic, len(tt.payload), err, tt.want)
				}
				// The connection stays usable and nothing was sent.
				publish(t, c.c, "after.refusal", []byte(tt.name))
				if m := recv(t, s); m.Topic != "after.refusal" || string(m.Payload) != tt.name {
					t.Errorf("after the refusal received %q %q; want after.refusal %q", m.Topic, m.Payload, tt.name)
				}
				if err := c.c.Flush(testCtx(t)); err != nil {
					t.Errorf("Flush after a local refusal = %v; want nil (nothing reached the broker)", err)
				}
			})
		}
	}
}

// TestPublishRawRefused bypasses the client's checks: the broker must
// refuse each bad PUBLISH with a non-fatal ERROR and keep serving the same
// connection.
func TestPublishRawRefused(t *testing.T) {
	_, path := startBroker(t, Config{})
	sub := dial(t, path)
	s := subscribe(t, sub, "#")

	tests := []struct {
		name string
		env  *wire.Envelope
		code wire.ErrorCode
	}{
		{"payload 1 MiB + 1", &wire.Envelope{Topic: "big.refused", Payload: make([]byte, DefaultMaxMessageSize+1)}, wire.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE},
		{"invalid topic", &wire.Envelope{Topic: "Bad..Topic", Payload: []byte("x")}, wire.ErrorCode_ERROR_CODE_INVALID_TOPIC},
		{"no topic", &wire.Envelope{Payload: []byte("x")}, wire.ErrorCode_ERROR_CODE_INVALID_TOPIC},
		{"wildcard topic", &wire.Envelope{Topic: "a.#", Payload: []byte("x")}, wire.ErrorCode_ERROR_CODE_INVALID_TOPIC},
		{"reserved topic", &wire.Envelope{Topic: "$sys.x", Payload: []byte("x")}, wire.ErrorCode_ERROR_CODE_RESERVED_TOPIC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := testutil.HandshakeRaw(t, path)
			raw.Send(wire.TypePublish, tt.env)
			f := raw.ExpectError(tt.code, false)
			if f.PublishSeq != 1 {
				t.Errorf("ERROR publish_seq = %d; want 1", f.PublishSeq)
			}
			if tt.env.Topic != "" && f.Topic != tt.env.Topic {
				t.Errorf("ERROR topic = %q; want %q", f.Topic, tt.env.Topic)
			}
			// A valid publish on the same connection is still delivered.
			want := []byte("after " + tt.name)
			raw.Send(wire.TypePublish, &wire.Envelope{Topic: "raw.ok", Payload: want, PublishedAt: time.Now().UnixNano()})
			raw.Ping(1)
			m := recv(t, s)
			if m.Topic != "raw.ok" || !bytes.Equal(m.Payload, want) {
				t.Errorf("after the refusal received %q %q; want raw.ok %q", m.Topic, m.Payload, want)
			}
			if err := errors.Join(drainErrs(s)...); err != nil {
				t.Error(err)
			}
		})
	}
}

// drainErrs reports anything on s beyond what a test consumed.
func drainErrs(s *eventbus.Subscription) []error {
	var errs []error
	for _, m := range drain(s) {
		errs = append(errs, fmt.Errorf("unexpected extra message on %q", m.Topic))
	}
	return errs
}

func TestSubscribeInvalidPattern(t *testing.T) {
	_, path := startBroker(t, Config{})
	c := dial(t, path)
	tests := []struct {
		name     string
		patterns []string
	}{
		{"plus inside segment", []string{"ev+"}},
		{"hash inside segment", []string{"a#"}},
		{"hash not last", []string{"a.#.b"}},
		{"star", []string{"a.*"}},
		{"uppercase", []string{"A.b"}},
		{"empty", []string{""}},
		{"one bad of two", []string{"a.b", "a..b"}},
		{"none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Subscribe(testCtx(t), tt.patterns...)
			if !errors.Is(err, eventbus.ErrInvalidPattern) {
				t.Errorf("Subscribe(%q) = %v; want %v", tt.patterns, err, eventbus.ErrInvalidPattern)
			}
			// The broker refuses them too, with the request's id.
			if len(tt.patterns) == 0 || tt.patterns[0] == "a.b" {
				return
			}
			raw := testutil.HandshakeRaw(t, path)
			raw.Send(wire.TypeSubscribe, &wire.Subscribe{RequestId: 42, SubscriptionId: 1, Patterns: tt.patterns})
			if f := raw.ExpectError(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, false); f.RequestId != 42 {
				t.Errorf("ERROR request_id = %d; want 42", f.RequestId)
			}
			raw.Ping(7)
		})
	}
}

func TestMaxSubscriptions(t *testing.T) {
	b, path := startBroker(t, Config{MaxSubscriptions: 3})
	c := dial(t, path)
	s1 := subscribe(t, c, "a", "b")
	steps := []struct {
		patterns []string
		want     error
	}{
		{[]string{"c", "d"}, eventbus.ErrTooManySubscriptions},
		{[]string{"c"}, nil},
		{[]string{"d"}, eventbus.ErrTooManySubscriptions},
		{[]string{"x.#", "y.#", "z.#", "w.#"}, eventbus.ErrTooManySubscriptions},
	}
	for i, st := range steps {
		_, err := c.Subscribe(testCtx(t), st.patterns...)
		if (st.want == nil && err != nil) || (st.want != nil && !errors.Is(err, st.want)) {
			t.Errorf("step %d: Subscribe(%q) = %v; want %v", i, st.patterns, err, st.want)
		}
		if st.want != nil && err != nil && !strings.Contains(err.Error(), "max_subscriptions") {
			t.Errorf("step %d: error %q does not name max_subscriptions", i, err)
		}
	}
	if err := s1.Unsubscribe(testCtx(t)); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if _, err := c.Subscribe(testCtx(t), "d", "e"); err != nil {
		t.Errorf("Subscribe(d, e) after freeing two patterns = %v; want nil", err)
	}
	if n := limitCount(b.Stats(), "max_subscriptions"); n != 3 {
		t.Errorf("max_subscriptions in stats = %d; want the 3 refusals", n)
	}
}

func TestMaxConnections(t *testing.T) {
	b, path := startBroker(t, Config{MaxConnections: 2})
	in1 := inProcess(t, b) // in-process clients do not count
	c1 := dial(t, path, eventbus.WithName("c1"))
	dial(t, path, eventbus.WithName("c2"))
	inProcess(t, b)

	c3, err := eventbus.Dial(testCtx(t), path, eventbus.WithName("c3"))
	if err == nil {
		c3.Close()
		t.Fatalf("third eventbus.Dial with max_connections 2 succeeded; want %v", eventbus.ErrTooManyConnections)
	}
	if !errors.Is(err, eventbus.ErrTooManyConnections) {
		t.Fatalf("third eventbus.Dial = %v; want %v", err, eventbus.ErrTooManyConnections)
	}
	if !strings.Contains(err.Error(), "max_connections") {
		t.Errorf("error %q does not name max_connections", err)
	}

	raw := testutil.DialRaw(t, path)
	if v, err := raw.ReadPreamble(); err != nil || v != wire.Version {
		t.Fatalf("refused raw connection: preamble %d, %v; want version %d", v, err, wire.Version)
	}
	raw.ExpectError(wire.ErrorCode_ERROR_CODE_TOO_MANY_CONNECTIONS, true)
	raw.ExpectClosed()

	// An in-process client still connects, and stats count the refusals.
	in3 := inProcess(t, b)
	st, err := in3.Stats(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.ConnectionsRefused != 2 || st.Connections != 5 || st.MaxConnections != 2 {
		t.Errorf("stats: refused %d, connections %d, max %d; want 2, 5 (2 socket + 3 in process), 2",
			st.ConnectionsRefused, st.Connections, st.MaxConnections)
	}
	_ = in1

	// Closing a socket client makes room for another.
	c1.Close()
	waitFor(t, "the broker to notice c1 closed", func() bool { return b.Stats().Connections == 4 })
	dial(t, path, eventbus.WithName("c4"))
}
