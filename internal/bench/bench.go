// Package bench measures eventbus end to end over a real socket, and a raw
// Unix-socket writer→reader on the same machine in the same run, so its
// figures can be quoted as a ratio of the baseline.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/transport"
)

// Config is one benchmark run.
type Config struct {
	// Socket is the broker to measure; empty starts one in this process
	// on a temporary socket (clients still go through the socket).
	Socket string
	Pubs   int    // publishing clients
	Subs   int    // subscribing clients
	Size   int    // payload bytes
	Msgs   int    // messages published in all
	Topic  string // topic published to
	// Pattern each subscriber subscribes to; it must match Topic.
	Pattern string
	// Rate paces publishing at this many messages per second in all, to
	// measure latency at a load; 0 publishes as fast as possible.
	Rate int
	// Baseline also measures a raw Unix-socket writer→reader.
	Baseline bool
	// Timeout bounds the wait for subscribers after publishing ends.
	Timeout time.Duration
	// Correlation publishes every message with full metadata: a stage, a
	// source and 4 tags, one workflow per publisher. Each run then also
	// measures the same load without metadata, against the same broker,
	// so the overhead can be quoted as a ratio.
	Correlation bool
	// PlainFirst measures the load without metadata first; alternating it
	// between runs cancels any advantage of going first or second.
	PlainFirst bool `json:"-"`
	// ClientOptions are added to every client's, e.g. the identity to claim
	// at an external broker whose policy restricts the topic.
	ClientOptions []eventbus.ClientOption `json:"-"`
	// Policy is the in-process broker's access policy; nil means
	// acl.Open (every topic public, each publish still checked).
	Policy *acl.Policy `json:"-"`
}

// Result is what one run measured.
type Result struct {
	Published uint64
	Delivered uint64
	Missed    uint64
	Elapsed   time.Duration
	// Latency is one-way: subscriber receipt minus the publisher's
	// timestamp. Recorded for every message.
	Latency stats.LatencySnapshot
}

// PublishRate is messages published per second.
func (r Result) PublishRate() float64 { return float64(r.Published) / r.Elapsed.Seconds() }

// DeliverRate is messages delivered per second, across all subscribers.
func (r Result) DeliverRate() float64 { return float64(r.Delivered) / r.Elapsed.Seconds() }

// Report is a run's result and, if asked for, the baseline's and (with
// Config.Correlation) the result of the same load without metadata.
type Report struct {
	Config   Config
	Bus      Result
	Baseline *Result
	Plain    *Result
}

// Run measures one configuration.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	rep := Report{Config: cfg}
	policy := cfg.Policy
	if policy == nil {
		policy = acl.Open()
	}
	addr, stop, err := startBroker(cfg.Socket, policy)
	if err != nil {
		return rep, err
	}
	defer stop()
	runPlain := func() error {
		plain := cfg
		plain.Correlation = false
		p, err := runBus(ctx, addr, plain)
		if err != nil {
			return fmt.Errorf("bench: without metadata: %w", err)
		}
		rep.Plain = &p
		return nil
	}
	if cfg.Correlation && cfg.PlainFirst {
		if err := runPlain(); err != nil {
			return rep, err
		}
	}
	if rep.Bus, err = runBus(ctx, addr, cfg); err != nil {
		return rep, err
	}
	if cfg.Correlation && !cfg.PlainFirst {
		if err := runPlain(); err != nil {
			return rep, err
		}
	}
	if cfg.Baseline {
		b, err := runBaseline(ctx, cfg)
		if err != nil {
			return rep, fmt.Errorf("bench: baseline: %w", err)
		}
		rep.Baseline = &b
	}
	return rep, nil
}

func (c *Config) check() error {
	switch {
	case c.Pubs < 1 || c.Subs < 0:
		return errors.New("bench: need at least one publisher and no negative subscriber count")
	case c.Msgs < c.Pubs:
		return fmt.Errorf("bench: %d messages cannot be split over %d publishers", c.Msgs, c.Pubs)
	case c.Size < 8:
		return fmt.Errorf("bench: payload size %d is below 8, the room for a sequence number", c.Size)
	case c.Topic == "" || c.Pattern == "":
		return errors.New("bench: topic and pattern are required")
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	return nil
}

// startBroker returns the address to dial, starting an in-process broker on a
// temporary socket, with policy, when socket is empty.
func startBroker(socket string, policy *acl.Policy) (string, func(), error) {
	if socket != "" {
		return socket, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "ebbench")
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "bench.sock")
	b, err := broker.New(broker.Config{Policy: policy})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	ln, err := transport.Listen(path)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		b.Serve(ln)
	}()
	return path, func() {
		b.Close()
		<-served
		os.RemoveAll(dir)
	}, nil
}

// runBus publishes cfg.Msgs messages and waits until every subscriber has
// received, or been told it missed, each of them.
func runBus(ctx context.Context, addr string, cfg Config) (Result, error) {
	var clients []*eventbus.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func(name string) (*eventbus.Client, error) {
		opts := append([]eventbus.ClientOption{eventbus.WithName(name), eventbus.WithReconnect(false)}, cfg.ClientOptions...)
		c, err := eventbus.Dial(ctx, addr, opts...)
		if err == nil {
			clients = append(clients, c)
		}
		return c, err
	}
	lat := stats.NewLatency()
	subs := make([]*benchSub, cfg.Subs)
	for i := range subs {
		c, err := dial(fmt.Sprintf("bench-sub-%d", i))
		if err != nil {
			return Result{}, err
		}
		subs[i] = &benchSub{lat: lat, stamps: make([]int64, 0, 1024)}
		if subs[i].sub, err = c.SubscribeFunc(ctx, subs[i].handle, cfg.Pattern); err != nil {
			return Result{}, err
		}
	}
	pubs := make([]*eventbus.Client, cfg.Pubs)
	for i := range pubs {
		c, err := dial(fmt.Sprintf("bench-pub-%d", i))
		if err != nil {
			return Result{}, err
		}
		pubs[i] = c
	}
	start := time.Now()
	if err := publishAll(ctx, pubs, cfg); err != nil {
		return Result{}, err
	}
	res := Result{Published: uint64(cfg.Msgs)}
	if err := waitAccounted(ctx, subs, uint64(cfg.Msgs), cfg.Timeout); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	for _, s := range subs {
		s.flush()
		res.Delivered += s.delivered.Load()
		res.Missed += s.sub.Missed()
	}
	res.Latency = lat.Snapshot()
	return res, nil
}

// benchSub counts what one subscriber received and records latencies.
type benchSub struct {
	sub       *eventbus.Subscription
	lat       *stats.Latency
	stamps    []int64 // handler-owned until flush
	delivered atomic.Uint64
}

func (s *benchSub) handle(m *eventbus.Message) {
	s.stamps = append(s.stamps, time.Now().UnixNano()-m.PublishedAt.UnixNano())
	if len(s.stamps) == cap(s.stamps) {
		s.flush()
	}
	s.delivered.Add(1)
}

func (s *benchSub) flush() {
	s.lat.RecordMany(s.stamps)
	s.stamps = s.stamps[:0]
}

// waitAccounted waits until every subscriber's deliveries plus reported
// misses reach want.
func waitAccounted(ctx context.Context, subs []*benchSub, want uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for {
		var got, done uint64
		for _, s := range subs {
			n := s.delivered.Load() + s.sub.Missed()
			got += n
			if n >= want {
				done++
			}
		}
		if done == uint64(len(subs)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: subscribers got or were told they missed %d of %d messages within %v", got, want*uint64(len(subs)), timeout)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publishAll splits cfg.Msgs over the publishers, paced if cfg.Rate > 0,
// and flushes each.
func publishAll(ctx context.Context, pubs []*eventbus.Client, cfg Config) error {
	var wg sync.WaitGroup
	errs := make([]error, len(pubs))
	for i, c := range pubs {
		n := cfg.Msgs / len(pubs)
		if i == 0 {
			n += cfg.Msgs % len(pubs)
		}
		var interval time.Duration
		if cfg.Rate > 0 {
			interval = time.Duration(float64(time.Second) * float64(len(pubs)) / float64(cfg.Rate))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var opts []eventbus.PublishOption
			if cfg.Correlation {
				opts = append(opts, eventbus.WithCorrelation(benchMetadata(i)))
			}
			errs[i] = publish(ctx, c, cfg.Topic, cfg.Size, n, interval, opts)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// benchMetadata is typical metadata: a stage, a source and 4 tags.
func benchMetadata(publisher int) correlation.Metadata {
	return correlation.New(correlation.WithStage("collection"), correlation.WithSource(fmt.Sprintf("bench-pub-%d", publisher)),
		correlation.WithTag("investigation_id", "INC-12345"), correlation.WithTag("host", "server-01"),
		correlation.WithTag("collector", "procmond"), correlation.WithTag("severity", "high"))
}

func publish(ctx context.Context, c *eventbus.Client, topicName string, size, n int, interval time.Duration, opts []eventbus.PublishOption) error {
	payload := make([]byte, size)
	var p *pacer
	if interval > 0 {
		p = newPacer()
		defer p.stop()
	}
	next := time.Now()
	for i := 0; i < n; i++ {
		if p != nil {
			next = next.Add(interval)
			p.sleepUntil(next)
		}
		if err := c.Publish(ctx, topicName, payload, opts...); err != nil {
			return err
		}
	}
	return refused(c.Flush(ctx))
}

// refused shortens Flush's list of refusals to the first and a count: a
// refused benchmark is usually refused every publish, for one reason.
func refused(err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) < 2 {
		return err
	}
	errs := j.Unwrap()
	return fmt.Errorf("bench: the broker refused %d publishes or more, the first: %w (a broker's policy may need --as)", len(errs), errs[0])
}
