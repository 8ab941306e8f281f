package broker

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/stats"
)

func TestStatsOverSocket(t *testing.T) {
	b, path := startBroker(t, Config{Policy: procmondPolicy(t)})
	pub := dial(t, path, eventbus.WithName("pub"), eventbus.WithComponent("procmond"))
	sub1 := dial(t, path, eventbus.WithName("sub1"))
	sub2 := dial(t, path, eventbus.WithName("sub2"))
	inproc := inProcess(t, b, eventbus.WithName("inproc"))
	subscribe(t, sub1, "events.#")
	subscribe(t, sub1, "events.process.lifecycle")
	subscribe(t, sub2, "events.#")
	subscribe(t, inproc, "other.+")

	published := map[string]int{"events.process.lifecycle": 3, "events.network.lifecycle": 2, "other.topic": 1}
	for name, n := range published {
		for range n {
			publish(t, pub, name, []byte("x"))
		}
	}
	settle(t, pub, sub1, sub2, inproc)

	for _, src := range []struct {
		name string
		get  func() (stats.Snapshot, error)
	}{
		{"Client.Stats over the socket", func() (stats.Snapshot, error) { return pub.Stats(testCtx(t)) }},
		{"Client.Stats in process", func() (stats.Snapshot, error) { return inproc.Stats(testCtx(t)) }},
		{"Broker.Stats", func() (stats.Snapshot, error) { return b.Stats(), nil }},
	} {
		t.Run(src.name, func(t *testing.T) {
			st, err := src.get()
			if err != nil {
				t.Fatal(err)
			}
			if !st.StatisticsEnabled {
				t.Errorf("StatisticsEnabled = false; want true by default")
			}
			// sub1: 5 (events.#) + 3 (exact); sub2: 5; inproc: 1.
			if st.Published != 6 || st.Delivered != 14 || st.Dropped != 0 {
				t.Errorf("published/delivered/dropped = %d/%d/%d; want 6/14/0", st.Published, st.Delivered, st.Dropped)
			}
			if st.Connections != 4 || len(st.ConnectionList) != 4 {
				t.Errorf("Connections = %d with %d listed; want 4", st.Connections, len(st.ConnectionList))
			}
			if st.Uptime() <= 0 {
				t.Errorf("Uptime = %v; want > 0", st.Uptime())
			}
			if l := st.DeliveryLatency; l.Count == 0 || l.Count > st.Delivered || l.Max < l.P50 {
				t.Errorf("DeliveryLatency = %+v; want 0 < Count <= %d and Max >= P50", l, st.Delivered)
			}
			for name, n := range published {
				if got := findTopic(st, name); got != uint64(n) {
					t.Errorf("topic %s published = %d; want %d", name, got, n)
				}
			}
			if len(st.Topics) != len(published) {
				t.Errorf("Topics = %+v; want exactly %d topics", st.Topics, len(published))
			}
			wantPatterns := []stats.PatternCount{{Pattern: "events.#", Subscribers: 2}, {Pattern: "events.process.lifecycle", Subscribers: 1}, {Pattern: "other.+", Subscribers: 1}}
			if !slices.Equal(st.Patterns, wantPatterns) {
				t.Errorf("Patterns = %+v; want %+v", st.Patterns, wantPatterns)
			}
			wantConns := []struct {
				name                string
				component           string
				inProc              bool
				subs                int
				published, delivers uint64
			}{
				{"pub", "procmond", false, 0, 6, 0},
				{"sub1", "", false, 2, 0, 8},
				{"sub2", "", false, 1, 0, 5},
				{"inproc", "agent", true, 1, 0, 1},
			}
			for _, w := range wantConns {
				c, ok := findConn(st, w.name)
				if !ok {
					t.Errorf("connection %q not listed in %+v", w.name, st.ConnectionList)
					continue
				}
				if c.PID != os.Getpid() || c.UID != uint32(os.Getuid()) || c.GID != uint32(os.Getgid()) {
					t.Errorf("%s: pid/uid/gid = %d/%d/%d; want %d/%d/%d", w.name, c.PID, c.UID, c.GID, os.Getpid(), os.Getuid(), os.Getgid())
				}
				if c.Component != w.component || c.InProcess != w.inProc || c.Subscriptions != w.subs {
					t.Errorf("%s: component %q, in process %v, subscriptions %d; want %q, %v, %d",
						w.name, c.Component, c.InProcess, c.Subscriptions, w.component, w.inProc, w.subs)
				}
				if c.Published != w.published || c.Delivered != w.delivers || c.Dropped != 0 {
					t.Errorf("%s: published/delivered/dropped = %d/%d/%d; want %d/%d/0",
						w.name, c.Published, c.Delivered, c.Dropped, w.published, w.delivers)
				}
				if c.ConnectedAt.IsZero() || c.ConnectedAt.After(st.TakenAt) {
					t.Errorf("%s: ConnectedAt = %v; want before TakenAt %v", w.name, c.ConnectedAt, st.TakenAt)
				}
			}
		})
	}

	// An anonymous peer sees the totals, itself and the topics it may
	// read, not the others' connections, patterns or denials.
	anon, err := sub2.Stats(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if anon.Published != 6 || len(anon.ConnectionList) != 1 || anon.ConnectionList[0].ClientName != "sub2" || len(anon.Patterns) != 0 || len(anon.Denials) != 0 {
		t.Errorf("anonymous stats: published %d, connections %+v, patterns %+v, denials %+v; want 6, sub2 alone, none, none",
			anon.Published, anon.ConnectionList, anon.Patterns, anon.Denials)
	}

	// Counts of closed connections stay in the totals.
	sub2.Close()
	waitFor(t, "sub2's connection to close", func() bool { return b.Stats().Connections == 3 })
	if st := b.Stats(); st.Published != 6 || st.Delivered != 14 || st.ConnectionsTotal != 4 {
		t.Errorf("after a close: published/delivered/connections total = %d/%d/%d; want 6/14/4",
			st.Published, st.Delivered, st.ConnectionsTotal)
	}
}

// TestStatsDisabled: with enable_statistics false there are no per-topic
// counts or latencies, but drops and connections are still counted.
func TestStatsDisabled(t *testing.T) {
	b, path := startBroker(t, Config{EnableStatistics: bool2ptr(false), MessageBufferSize: 10, Policy: procmondPolicy(t)})
	if b.Config().StatisticsEnabled() {
		t.Fatalf("Config().StatisticsEnabled() = true; want false")
	}
	pub := dial(t, path, eventbus.WithName("pub"), eventbus.WithComponent("procmond")) // registered: sees every connection
	newRawSlow(t, path, "slow.#")                                                      // never reads: its drops must be counted
	const n = 600
	for i := range n {
		publish(t, pub, "slow.data", seqPayload(uint64(i), slowPayload))
	}
	ping(t, pub) // flush would wait for the stuck subscriber (write_timeout)

	st, err := pub.Stats(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.StatisticsEnabled {
		t.Errorf("StatisticsEnabled = true; want false")
	}
	if len(st.Topics) != 0 || st.PublishedUntracked != 0 {
		t.Errorf("Topics = %+v, untracked %d; want none", st.Topics, st.PublishedUntracked)
	}
	if st.DeliveryLatency.Count != 0 {
		t.Errorf("DeliveryLatency.Count = %d; want 0", st.DeliveryLatency.Count)
	}
	if st.Published != n {
		t.Errorf("Published = %d; want %d", st.Published, n)
	}
	raw, _ := findConn(st, "raw")
	if st.Dropped == 0 || raw.Dropped != st.Dropped {
		t.Errorf("Dropped = %d, the stuck subscriber's %d; want equal and > 0", st.Dropped, raw.Dropped)
	}
	if st.Connections != 2 {
		t.Errorf("Connections = %d; want 2", st.Connections)
	}
}

// TestStatsReplyOverPendingBytes: a statistics reply larger than
// max_pending_bytes still arrives (a reply may go over the bound by
// itself), so a busy broker's stats answer.
func TestStatsReplyOverPendingBytes(t *testing.T) {
	const bound = 1024
	_, path := startBroker(t, Config{MaxMessageSize: bound, MaxPendingBytes: bound})
	pub := dial(t, path)
	for i := range 300 {
		publish(t, pub, fmt.Sprintf("busy.topic.number-%d", i), nil)
	}
	flush(t, pub)
	st, err := pub.Stats(testCtx(t))
	if err != nil || len(st.Topics) != 300 {
		t.Fatalf("Stats with a reply over max_pending_bytes = %d topics, %v; want 300, nil", len(st.Topics), err)
	}
}
