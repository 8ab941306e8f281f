package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
)

// routingTopics are published, in this order, by TestRouting.
var routingTopics = []string{
	"events.process.lifecycle",
	"events.process",
	"events.process.a.b",
	"events.network.lifecycle",
	"events.lifecycle",
	"control.collector.lifecycle",
	"a",
	"a.b",
	"a.b.c",
	"$sys.x", // never published by a client; the publisher refuses it locally
}

func TestRouting(t *testing.T) {
	b, path := startBroker(t, Config{})
	pub := dial(t, path, eventbus.WithName("pub"))

	tests := []struct {
		name     string
		patterns []string
		inProc   bool
		want     []string
	}{
		{"exact", []string{"events.process.lifecycle"}, false, []string{"events.process.lifecycle"}},
		{"plus", []string{"events.+.lifecycle"}, false, []string{"events.process.lifecycle", "events.network.lifecycle"}},
		{"hash", []string{"events.process.#"}, false, []string{"events.process.lifecycle", "events.process", "events.process.a.b"}},
		{"plus then hash", []string{"a.+.#"}, false, []string{"a.b", "a.b.c"}},
		{"hash alone", []string{"#"}, false, routingTopics[:len(routingTopics)-1]},
		{"no match", []string{"events.filesystem.#"}, false, nil},
		{"no match in process", []string{"nothing.+"}, true, nil},
		{"two matching patterns deliver once", []string{"a.b", "a.#"}, false, []string{"a", "a.b", "a.b.c"}},
		{"duplicate patterns deliver once", []string{"a.b", "a.b"}, false, []string{"a.b"}},
		{"in process plus", []string{"+.+.lifecycle"}, true, []string{"events.process.lifecycle", "events.network.lifecycle", "control.collector.lifecycle"}},
	}
	subs := make([]*eventbus.Subscription, len(tests))
	clients := make([]*eventbus.Client, len(tests))
	for i, tt := range tests {
		if tt.inProc {
			clients[i] = inProcess(t, b)
		} else {
			clients[i] = dial(t, path)
		}
		subs[i] = subscribe(t, clients[i], tt.patterns...)
	}
	for _, name := range routingTopics {
		err := pub.Publish(testCtx(t), name, []byte(name))
		if reserved := name[0] == '$'; (err != nil) != reserved {
			t.Fatalf("Publish(%q) = %v; want error %v", name, err, reserved)
		}
	}
	settle(t, pub, clients...)

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := drain(subs[i])
			if !slices.Equal(topicsOf(got), tt.want) {
				t.Errorf("patterns %q received %q; want %q", tt.patterns, topicsOf(got), tt.want)
			}
			for _, m := range got {
				if string(m.Payload) != m.Topic {
					t.Errorf("message on %q has payload %q; want the topic", m.Topic, m.Payload)
				}
			}
		})
	}
}

func TestTwoSubscriptionsOnOneConnection(t *testing.T) {
	b, path := startBroker(t, Config{})
	for _, inProc := range []bool{false, true} {
		name := map[bool]string{false: "socket", true: "in process"}[inProc]
		t.Run(name, func(t *testing.T) {
			var c *eventbus.Client
			if inProc {
				c = inProcess(t, b)
			} else {
				c = dial(t, path)
			}
			s1 := subscribe(t, c, "x.y")
			s2 := subscribe(t, c, "x.+")
			publish(t, c, "x.y", []byte("both"))
			publish(t, c, "x.z", []byte("second only"))
			settle(t, c, c)
			if got := topicsOf(drain(s1)); !slices.Equal(got, []string{"x.y"}) {
				t.Errorf("first subscription received %q; want [x.y]", got)
			}
			if got := topicsOf(drain(s2)); !slices.Equal(got, []string{"x.y", "x.z"}) {
				t.Errorf("second subscription received %q; want [x.y x.z]", got)
			}
		})
	}
}

// TestMessageComplete checks every field of a delivered message, over a
// socket and in process.
func TestMessageComplete(t *testing.T) {
	b, path := startBroker(t, Config{Policy: procmondPolicy(t)})
	sock := dial(t, path)
	inproc := inProcess(t, b)
	payload := bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)

	// The component is the one the broker verified: the claim for a socket
	// client, always the agent for the in-process client.
	tests := []struct {
		name      string
		pub       func(t *testing.T) *eventbus.Client
		component string
	}{
		{"socket publisher", func(t *testing.T) *eventbus.Client { return dial(t, path, eventbus.WithComponent("procmond")) }, "procmond"},
		{"in-process publisher", func(t *testing.T) *eventbus.Client { return inProcess(t, b, eventbus.WithComponent("procmond")) }, "agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := tt.pub(t)
			s1, s2 := subscribe(t, sock, "events.process.lifecycle"), subscribe(t, inproc, "events.#")
			defer s1.Unsubscribe(testCtx(t))
			defer s2.Unsubscribe(testCtx(t))
			before := time.Now()
			publish(t, pub, "events.process.lifecycle", payload)
			after := time.Now()
			for _, s := range []*eventbus.Subscription{s1, s2} {
				m := recv(t, s)
				if m.Topic != "events.process.lifecycle" {
					t.Errorf("Topic = %q; want events.process.lifecycle", m.Topic)
				}
				if !bytes.Equal(m.Payload, payload) {
					t.Errorf("Payload = %d bytes; want the %d bytes published", len(m.Payload), len(payload))
				}
				if m.PublishedAt.Before(before.Add(-time.Millisecond)) || m.PublishedAt.After(after.Add(time.Millisecond)) {
					t.Errorf("PublishedAt = %v; want between %v and %v", m.PublishedAt, before, after)
				}
				if m.ReceivedAt.Before(m.PublishedAt.Add(-10*time.Millisecond)) || m.ReceivedAt.After(time.Now()) {
					t.Errorf("ReceivedAt = %v; want at or after PublishedAt %v and not in the future", m.ReceivedAt, m.PublishedAt)
				}
				if m.PublisherPID != os.Getpid() {
					t.Errorf("PublisherPID = %d; want %d", m.PublisherPID, os.Getpid())
				}
				if m.PublisherUID != uint32(os.Getuid()) {
					t.Errorf("PublisherUID = %d; want %d", m.PublisherUID, os.Getuid())
				}
				if m.PublisherComponent != tt.component {
					t.Errorf("PublisherComponent = %q; want %s", m.PublisherComponent, tt.component)
				}
				if m.Missed != 0 {
					t.Errorf("Missed = %d; want 0", m.Missed)
				}
			}
		})
	}
}

// TestPublishOrder sends 10,000 numbered messages from one publisher to
// three subscribers (two over sockets, one in process); each must see all
// of them, in order.
func TestPublishOrder(t *testing.T) {
	const n = 10000
	b, path := startBroker(t, Config{})
	pub := dial(t, path)
	subs := []*eventbus.Subscription{
		subscribe(t, dial(t, path, eventbus.WithChannelSize(n)), "order.#"),
		subscribe(t, dial(t, path, eventbus.WithChannelSize(n)), "order.test"),
		subscribe(t, inProcess(t, b, eventbus.WithChannelSize(n)), "+.test"),
	}
	var wg sync.WaitGroup
	errs := make([]string, len(subs))
	for i, s := range subs {
		wg.Go(func() {
			for want := uint64(0); want < n; want++ {
				var m *eventbus.Message
				select {
				case m = <-s.C:
				case <-time.After(testTimeout):
					errs[i] = "timed out"
				}
				if m == nil {
					errs[i] += fmt.Sprintf(" waiting for message %d", want)
					return
				}
				if len(m.Payload) < 8 {
					errs[i] = "payload too short: " + string(m.Payload)
					return
				}
				if got := binary.BigEndian.Uint64(m.Payload); got != want || m.Missed != 0 {
					errs[i] = fmt.Sprintf("got message %d (missed %d); want %d (missed 0)", got, m.Missed, want)
					return
				}
			}
		})
	}
	for i := uint64(0); i < n; i++ {
		publish(t, pub, "order.test", seqPayload(i, 16))
	}
	flush(t, pub)
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("subscriber %d: %s", i, e)
		}
		if m := subs[i].Missed(); m != 0 {
			t.Errorf("subscriber %d: Missed() = %d; want 0", i, m)
		}
	}
}
