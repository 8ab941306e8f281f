package compare

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/transport"
)

var payload = make([]byte, 128)

// startEventbus serves a broker on a Unix socket in a private directory.
func startEventbus(b *testing.B) string {
	dir, err := os.MkdirTemp("", "ebc")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	br, err := broker.New(broker.Config{Policy: acl.Open(), MessageBufferSize: 1 << 20, MaxPendingBytes: 512 << 20, MaxPendingBytesAnonymous: 512 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := transport.Listen(path)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); br.Serve(ln) }()
	b.Cleanup(func() { br.Close(); <-done })
	return path
}

func dialEventbus(b *testing.B, path string) *eventbus.Client {
	c, err := eventbus.Dial(context.Background(), path, eventbus.WithReconnect(false))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// startNATS runs nats-server in process on a loopback TCP port.
func startNATS(b *testing.B) string {
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPending: 512 << 20})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	b.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func dialNATS(b *testing.B, url string) *nats.Conn {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// reportLatency adds the p50 and p99 of h, in microseconds.
func reportLatency(b *testing.B, h *hdrhistogram.Histogram) {
	b.ReportMetric(float64(h.ValueAtQuantile(50))/1e3, "p50-µs")
	b.ReportMetric(float64(h.ValueAtQuantile(99))/1e3, "p99-µs")
}

// BenchmarkRequestReply: one requester, one responder, sequential round
// trips of 128-byte requests and replies.
func BenchmarkRequestReply(b *testing.B) {
	b.Run("eventbus", func(b *testing.B) {
		path := startEventbus(b)
		srv := dialEventbus(b, path)
		ctx := context.Background()
		if _, err := srv.SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: []string{"svc.echo"}, Responder: true,
			Handler: func(m *eventbus.Message) { m.Reply(ctx, m.Payload) }}); err != nil {
			b.Fatal(err)
		}
		c := dialEventbus(b, path)
		h := hdrhistogram.New(1, int64(time.Second), 3)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if _, err := c.Request(ctx, "svc.echo", payload); err != nil {
				b.Fatal(err)
			}
			h.RecordValue(int64(time.Since(start)))
		}
		b.StopTimer()
		reportLatency(b, h)
	})
	b.Run("nats", func(b *testing.B) {
		url := startNATS(b)
		srv := dialNATS(b, url)
		if _, err := srv.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
			b.Fatal(err)
		}
		srv.Flush()
		c := dialNATS(b, url)
		h := hdrhistogram.New(1, int64(time.Second), 3)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if _, err := c.Request("svc.echo", payload, 5*time.Second); err != nil {
				b.Fatal(err)
			}
			h.RecordValue(int64(time.Since(start)))
		}
		b.StopTimer()
		reportLatency(b, h)
	})
}

// BenchmarkQueueGroup: one publisher, a queue group of 3 members; reports
// messages dispatched per second, each received by exactly one member.
func BenchmarkQueueGroup(b *testing.B) {
	const members = 3
	b.Run("eventbus", func(b *testing.B) {
		path := startEventbus(b)
		var got atomic.Int64
		done := make(chan struct{})
		var once sync.Once
		want := int64(b.N)
		for range members {
			m := dialEventbus(b, path)
			if _, err := m.SubscribeWith(context.Background(), eventbus.SubscribeOptions{Patterns: []string{"tasks.#"}, Group: "workers",
				Handler: func(*eventbus.Message) {
					if got.Add(1) == want {
						once.Do(func() { close(done) })
					}
				}}); err != nil {
				b.Fatal(err)
			}
		}
		pub := dialEventbus(b, path)
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			if err := pub.Publish(ctx, "tasks.process", payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := pub.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		wait(b, done, &got)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("nats", func(b *testing.B) {
		url := startNATS(b)
		var got atomic.Int64
		done := make(chan struct{})
		var once sync.Once
		want := int64(b.N)
		for range members {
			m := dialNATS(b, url)
			sub, err := m.QueueSubscribe("tasks.>", "workers", func(*nats.Msg) {
				if got.Add(1) == want {
					once.Do(func() { close(done) })
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			sub.SetPendingLimits(-1, -1)
			m.Flush()
		}
		pub := dialNATS(b, url)
		b.ResetTimer()
		for range b.N {
			if err := pub.Publish("tasks.process", payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			b.Fatal(err)
		}
		wait(b, done, &got)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

func wait(b *testing.B, done <-chan struct{}, got *atomic.Int64) {
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("dispatched %d of %d", got.Load(), b.N)
	}
}
