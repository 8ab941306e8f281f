package eventbus

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/transport"
)

// BenchmarkConfirm: 1 -> 1 over a real socket with the broker's
// confirmations (the default) and without (a HELLO without a session, the
// baseline), in one run, to compare: the target is a cost within 10%.
// Reports delivered msgs/s; the subscriber has every message before the
// clock stops.
func BenchmarkConfirm(b *testing.B) {
	b.Run("confirm=off", func(b *testing.B) { benchConfirm(b, func(o *clientOptions) { o.noConfirm = true }) })
	b.Run("confirm=on", func(b *testing.B) { benchConfirm(b, func(*clientOptions) {}) })
	// Confirmed, without keeping copies to resend: the cost of the copies.
	b.Run("confirm=on,resend=off", func(b *testing.B) { benchConfirm(b, WithResendBuffer(0)) })
}

func benchConfirm(b *testing.B, opt ClientOption) {
	path := filepath.Join(b.TempDir(), "b.sock")
	br, err := broker.New(broker.Config{Policy: acl.Open(), MessageBufferSize: 1 << 20, MaxPendingBytes: 512 << 20, MaxPendingBytesAnonymous: 512 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := transport.Listen(path)
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); br.Serve(ln) }()
	defer func() { br.Close(); <-served }()

	ctx := context.Background()
	sub, err := Dial(ctx, path, WithReconnect(false))
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	var mu sync.Mutex
	var n, want int
	got := make(chan struct{}, 1)
	s, err := sub.SubscribeFunc(ctx, func(*Message) {
		mu.Lock()
		if n++; n == want {
			got <- struct{}{}
		}
		mu.Unlock()
	}, "events.#")
	if err != nil {
		b.Fatal(err)
	}
	pub, err := Dial(ctx, path, WithReconnect(false), opt)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	payload := make([]byte, 128)
	mu.Lock()
	want = b.N
	mu.Unlock()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := pub.Publish(ctx, "events.process.lifecycle", payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(time.Minute):
		b.Fatalf("delivered %d of %d (missed %d, duplicates %d)", n, b.N, s.Missed(), s.Duplicates())
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
