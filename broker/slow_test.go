package broker

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/wire"
)

const (
	slowBuffer  = 100  // message_buffer_size in these tests
	slowN       = 3000 // messages published; far more than buffers hold
	slowPayload = 1024
	slowChunk   = 50 // published between waits for the fast subscriber
)

// slowSub is a subscriber that reads nothing until released.
type slowSub interface {
	// release lets it read again.
	release()
	// collect reads until it has accounted for n messages (received or
	// reported missed), then calls tail, which publishes one more message,
	// and reads until that arrives. It returns the sequence numbers
	// received, the Missed counts attached to messages, and the total
	// missed.
	collect(t *testing.T, n int, tail func()) (seqs []uint64, attached, total uint64)
}

// clientSlow is a client whose handler blocks, so its reader stops and
// its socket (or pipe) fills.
type clientSlow struct {
	c       *eventbus.Client
	sub     *eventbus.Subscription
	gate    chan struct{}
	once    sync.Once
	msgs    chan *eventbus.Message
	discErr chan error
}

func newClientSlow(t *testing.T, connect func(...eventbus.ClientOption) *eventbus.Client, pattern string) *clientSlow {
	s := &clientSlow{gate: make(chan struct{}), msgs: make(chan *eventbus.Message, slowN+10), discErr: make(chan error, 10)}
	c := connect(eventbus.WithName("slow"), eventbus.WithDisconnectHandler(func(err error) { s.discErr <- err }))
	t.Cleanup(s.release) // before the client's Close, which waits for the handler
	s.c = c
	var err error
	s.sub, err = c.SubscribeFunc(testCtx(t), func(m *eventbus.Message) {
		<-s.gate
		s.msgs <- m
	}, pattern)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *clientSlow) release() { s.once.Do(func() { close(s.gate) }) }

func (s *clientSlow) collect(t *testing.T, n int, tail func()) (seqs []uint64, attached, total uint64) {
	t.Helper()
	// Missed() grows when a MISSED frame arrives, which no message on
	// s.msgs announces: check it on a short tick.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	tailSent := false
	for {
		select {
		case m := <-s.msgs:
			attached += m.Missed
			if m.Topic == "slow.tail" {
				return seqs, attached, s.sub.Missed()
			}
			seqs = append(seqs, binary.BigEndian.Uint64(m.Payload))
		case <-tick.C:
		case <-deadline:
			t.Fatalf("slow subscriber: received %d, missed %d of %d (tail sent: %v) within %v",
				len(seqs), s.sub.Missed(), n, tailSent, testTimeout)
		}
		if !tailSent && uint64(len(seqs))+s.sub.Missed() >= uint64(n) {
			tail()
			tailSent = true
		}
	}
}

// rawSlow is a raw connection that subscribes and then reads nothing.
type rawSlow struct{ raw *testutil.Raw }

func newRawSlow(t *testing.T, path, pattern string) *rawSlow {
	raw := testutil.HandshakeRaw(t, path)
	raw.Send(wire.TypeSubscribe, &wire.Subscribe{RequestId: 1, SubscriptionId: 9, Patterns: []string{pattern}})
	raw.Expect(wire.TypeOK)
	return &rawSlow{raw}
}

func (s *rawSlow) release() {}

func (s *rawSlow) collect(t *testing.T, n int, tail func()) (seqs []uint64, attached, total uint64) {
	t.Helper()
	for tailSent := false; ; {
		if !tailSent && uint64(len(seqs))+total >= uint64(n) {
			tail()
			tailSent = true
		}
		typ, body, err := s.raw.ReadFrame()
		if err != nil {
			t.Fatalf("raw slow subscriber: after %d messages: %v", len(seqs), err)
		}
		switch typ {
		case wire.TypeMissed:
			var m wire.Missed
			if err := m.UnmarshalVT(body); err != nil || m.SubscriptionId != 9 {
				t.Fatalf("MISSED = %v, %v; want subscription 9", &m, err)
			}
			total += m.Count
			attached += m.Count
		case wire.TypeDeliver:
			var d wire.Deliver
			if err := d.UnmarshalVT(body); err != nil || d.SubscriptionId != 9 || d.Envelope == nil {
				t.Fatalf("DELIVER = %v, %v; want subscription 9", &d, err)
			}
			if d.Envelope.Topic == "slow.tail" {
				return seqs, attached, total
			}
			seqs = append(seqs, binary.BigEndian.Uint64(d.Envelope.Payload))
		default:
			t.Fatalf("raw slow subscriber: unexpected %v frame", typ)
		}
	}
}

// publishPaced publishes n numbered messages on "slow.data" in chunks,
// waiting after each chunk for the fast subscriber to receive it, so the
// fast subscriber's own queue never overflows however the goroutines are
// scheduled. after is called after each chunk.
func publishPaced(t *testing.T, pub *eventbus.Client, fast *eventbus.Subscription, n int, after func()) {
	t.Helper()
	for i := 0; i < n; i += slowChunk {
		end := min(i+slowChunk, n)
		for j := i; j < end; j++ {
			publish(t, pub, "slow.data", seqPayload(uint64(j), slowPayload))
		}
		for j := i; j < end; j++ {
			m := recv(t, fast)
			if got := seqOf(t, m); got != uint64(j) || m.Missed != 0 {
				t.Fatalf("fast subscriber got message %d (missed %d); want %d (missed 0)", got, m.Missed, j)
			}
		}
		if after != nil {
			after()
		}
	}
}

// TestSlowSubscriberDrop: a subscriber that stops reading slows neither
// the publisher nor a fast subscriber; what it loses is counted and
// reported, exactly.
func TestSlowSubscriberDrop(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, b *Broker, path string) slowSub
	}{
		{"raw socket never read", func(t *testing.T, b *Broker, path string) slowSub {
			return newRawSlow(t, path, "slow.#")
		}},
		{"socket client handler blocked", func(t *testing.T, b *Broker, path string) slowSub {
			return newClientSlow(t, func(o ...eventbus.ClientOption) *eventbus.Client { return dial(t, path, o...) }, "slow.#")
		}},
		{"in-process client handler blocked", func(t *testing.T, b *Broker, path string) slowSub {
			return newClientSlow(t, func(o ...eventbus.ClientOption) *eventbus.Client { return inProcess(t, b, o...) }, "slow.#")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The stuck subscriber must outlive write_timeout's bound.
			b, path := startBroker(t, Config{MessageBufferSize: slowBuffer, WriteTimeout: time.Hour})
			pub := dial(t, path, eventbus.WithName("pub"))
			fastC := dial(t, path, eventbus.WithName("fast"))
			fast := subscribe(t, fastC, "slow.#")
			slow := tt.make(t, b, path)

			start := time.Now()
			publishPaced(t, pub, fast, slowN, nil)
			ping(t, pub) // flush would wait for the stuck subscriber to take its queue
			t.Logf("published %d messages past a stuck subscriber in %v", slowN, time.Since(start))

			st := b.Stats()
			if st.Dropped == 0 {
				t.Fatalf("stats Dropped = 0 after %d messages to a stuck subscriber with buffer %d; want > 0", slowN, slowBuffer)
			}
			if fc, _ := findConn(st, "fast"); fc.Dropped != 0 {
				t.Errorf("fast subscriber's Dropped = %d; want 0", fc.Dropped)
			}

			// Once it has everything but the tail, its queue is empty and
			// the tail cannot be dropped.
			slow.release()
			seqs, attached, total := slow.collect(t, slowN, func() {
				publish(t, pub, "slow.tail", []byte("tail"))
			})

			if total == 0 {
				t.Errorf("slow subscriber missed 0 messages; want > 0")
			}
			if got := uint64(len(seqs)) + total; got != slowN {
				t.Errorf("slow subscriber received %d + missed %d = %d; want exactly %d", len(seqs), total, got, slowN)
			}
			if attached != total {
				t.Errorf("Missed counts reported with messages sum to %d; want the total missed, %d", attached, total)
			}
			for i := 1; i < len(seqs); i++ {
				if seqs[i] <= seqs[i-1] {
					t.Fatalf("slow subscriber received %d after %d; want publish order", seqs[i], seqs[i-1])
				}
			}
			if st := b.Stats(); st.Dropped != total {
				t.Errorf("stats Dropped = %d; want %d, what the slow subscriber was told it missed", st.Dropped, total)
			}
		})
	}
}

// TestSlowSubscriberDisconnect: under the disconnect policy the slow
// subscriber's connection is closed as a slow consumer, and everyone else
// carries on.
func TestSlowSubscriberDisconnect(t *testing.T) {
	tests := []struct {
		name   string
		client bool // a client whose handler is released at the first drop; else a raw socket never read
		buffer int  // message_buffer_size
	}{
		{"raw socket never read", false, slowBuffer},
		// The socket buffer (about 200 KiB) fills before the queue: the
		// broker's writer is stuck in a write when the queue overflows.
		{"raw socket never read, socket full first", false, 1000},
		{"client released after first drop", true, slowBuffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := new(testutil.Buffer)
			b, path := startBroker(t, Config{
				MessageBufferSize:    tt.buffer,
				SlowSubscriberPolicy: SlowDisconnect,
				Logger:               slog.New(slog.NewTextHandler(logs, nil)),
			})
			pub := dial(t, path, eventbus.WithName("pub"))
			fastC := dial(t, path, eventbus.WithName("fast"))
			fast := subscribe(t, fastC, "slow.#")

			var slow *clientSlow
			var raw *rawSlow
			reconnected := make(chan struct{}, 10)
			if tt.client {
				slow = newClientSlow(t, func(o ...eventbus.ClientOption) *eventbus.Client {
					o = append(o, eventbus.WithBackoff(time.Millisecond, 10*time.Millisecond),
						eventbus.WithReconnectHandler(func() { reconnected <- struct{}{} }))
					return dial(t, path, o...)
				}, "slow.#")
			} else {
				raw = newRawSlow(t, path, "slow.#")
			}
			publishPaced(t, pub, fast, slowN, func() {
				if slow != nil && b.Stats().Dropped > 0 {
					slow.release()
				}
			})
			flush(t, pub)

			if tt.client {
				select {
				case err := <-slow.discErr:
					if !errors.Is(err, eventbus.ErrSlowConsumer) {
						t.Errorf("slow client disconnected with %v; want %v", err, eventbus.ErrSlowConsumer)
					}
				case <-time.After(testTimeout):
					t.Fatalf("slow client not disconnected within %v", testTimeout)
				}
				// It reconnects, its subscription is restored, and it
				// receives again. While it drains what it received before,
				// it may be slow, and disconnected, once more; what is
				// published meanwhile is lost to it. So publish until one
				// message arrives.
				select {
				case <-reconnected:
				case <-time.After(testTimeout):
					t.Fatalf("slow client did not reconnect within %v", testTimeout)
				}
				deadline := time.After(testTimeout)
				published := 0
				for got := false; !got; {
					if slow.c.Flush(testCtx(t)) == nil { // connected, subscription restored
						publish(t, pub, "slow.again", []byte("again"))
						published++
					}
					retry := time.After(200 * time.Millisecond)
					for waiting := true; waiting && !got; {
						select {
						case m := <-slow.msgs:
							got = m.Topic == "slow.again"
						case <-retry:
							waiting = false
						case <-deadline:
							t.Fatalf("reconnected slow client did not receive slow.again (published %d times) within %v", published, testTimeout)
						}
					}
				}
				for range published {
					if m := recv(t, fast); m.Topic != "slow.again" {
						t.Errorf("fast subscriber got %q; want slow.again", m.Topic)
					}
				}
			} else {
				// The broker closes the connection though the subscriber
				// never reads (reading would unstick a blocked writer)...
				waitFor(t, "the broker to close the unread connection", func() bool {
					_, open := findConn(b.Stats(), "raw")
					return !open
				})
				// ... and what it sent is readable, then EOF.
				deadline := time.Now().Add(testTimeout)
				delivered, sawErr := 0, false
				defer func() { t.Logf("raw slow subscriber read %d deliveries, slow-consumer error %v", delivered, sawErr) }()
				for {
					typ, body, err := raw.raw.ReadFrame()
					if err != nil {
						if !testutil.IsClosed(err) {
							t.Fatalf("raw slow subscriber: %v; want the connection closed", err)
						}
						break
					}
					if typ == wire.TypeDeliver {
						delivered++
					}
					if typ == wire.TypeError {
						sawErr = true
						var f wire.ErrorFrame
						if f.UnmarshalVT(body) != nil || f.Code != wire.ErrorCode_ERROR_CODE_SLOW_CONSUMER || !f.Fatal {
							t.Errorf("ERROR frame %v; want fatal SLOW_CONSUMER", &f)
						}
					}
					if time.Now().After(deadline) {
						t.Fatalf("raw slow subscriber still open after %v", testTimeout)
					}
				}
			}
			waitFor(t, "the slow connection's close to be logged", func() bool {
				return strings.Contains(logs.String(), `reason="slow consumer"`)
			})

			// The fast subscriber and the publisher carry on.
			publish(t, pub, "slow.after", []byte("after"))
			if m := recv(t, fast); m.Topic != "slow.after" {
				t.Errorf("fast subscriber got %q; want slow.after", m.Topic)
			}
		})
	}
}
