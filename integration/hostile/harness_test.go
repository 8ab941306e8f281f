//go:build linux

package hostile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(proctest.Exit))
}

// Bounds the tests assert: the broker's defaults (docs/SECURITY.md §7)
// and the memory it may use under attack.
const (
	maxRSS              = 256 << 20 // the broker's resident set size under every attack
	maxQueryBytes       = 4 << 20   // max_query_bytes
	maxWaits            = 16        // max_waits
	maxWaitsPerUID      = 64        // max_waits_per_uid
	maxCorrelationBytes = 1 << 20   // max_correlation_bytes
	maxSubscriptions    = 10000     // max_subscriptions
	maxConnections      = 100       // max_connections
	reservedConnections = 10        // reserved_connections: a tenth of max_connections
	logLinesPerSecond   = 10        // log_lines_per_second

	// waitTimeout bounds every wait for an event; it is a failure bound,
	// not a delay.
	waitTimeout = 60 * time.Second
)

// broker is a broker process and where to reach it.
type broker struct {
	*proctest.Proc
	Path      string // the socket
	TokenFile string // the agent token, beside the socket
}

// startBroker runs `eventbus broker --config FILE` with a config of
// socket_path, in a new private directory, and the lines of extra, and
// waits until it listens. It is stopped when tb ends.
func startBroker(tb testing.TB, extra ...string) *broker {
	tb.Helper()
	dir := testutil.SocketDir(tb)
	b := &broker{Path: filepath.Join(dir, "eventbus.sock"), TokenFile: filepath.Join(dir, "agent.token")}
	cfg := filepath.Join(dir, "broker.yaml")
	text := "socket_path: " + b.Path + "\n" + strings.Join(extra, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	b.Proc = proctest.Start(tb, proctest.Cmd{Path: proctest.Binary(tb), Name: "broker", Args: []string{"broker", "--config", cfg}})
	b.Stderr.WaitFor(tb, "listening on", waitTimeout)
	b.Stderr.WaitFor(tb, "agent token file: "+b.TokenFile, waitTimeout)
	return b
}

// testCtx is a context for the calls of one test, canceled when it ends.
func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	tb.Cleanup(cancel)
	return ctx
}

// dial connects a client, closed when tb ends.
func (b *broker) dial(tb testing.TB, name string, opts ...eventbus.ClientOption) *eventbus.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := eventbus.Dial(ctx, b.Path, append([]eventbus.ClientOption{eventbus.WithName(name), eventbus.WithReconnect(false)}, opts...)...)
	if err != nil {
		tb.Fatalf("dial %s: %v", name, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// procmond connects as the collector procmond, which the built-in policy
// admits from this uid: a registered component, whose statistics are
// complete.
func (b *broker) procmond(tb testing.TB, name string, opts ...eventbus.ClientOption) *eventbus.Client {
	tb.Helper()
	return b.dial(tb, name, append(opts, eventbus.WithComponent("procmond"))...)
}

// token reads the agent token the broker created beside its socket.
func (b *broker) token(tb testing.TB) []byte {
	tb.Helper()
	tok, err := acl.ReadTokenFile(b.TokenFile)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// agent connects as the agent, with the token.
func (b *broker) agent(tb testing.TB, name string, opts ...eventbus.ClientOption) *eventbus.Client {
	tb.Helper()
	return b.dial(tb, name, append(opts, eventbus.WithComponent(acl.AgentComponent), eventbus.WithToken(b.token(tb)))...)
}

// rawAs dials a raw peer named name and completes a handshake claiming
// component (none: anonymous) and presenting token (for the agent).
func (b *broker) rawAs(tb testing.TB, name, component string, token []byte) *testutil.Raw {
	tb.Helper()
	r := testutil.DialRaw(tb, b.Path)
	r.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: name, Component: component, Token: token}))
	r.ReadHandshake()
	return r
}

// snapshot asks c for the broker's statistics.
func snapshot(tb testing.TB, c *eventbus.Client) stats.Snapshot {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.Stats(ctx)
	if err != nil {
		tb.Fatalf("stats: %v", err)
	}
	if s.RSSBytes == 0 {
		tb.Fatal("the broker reports no rss_bytes")
	}
	return s
}

// limitCount is how often the limit named key was enforced.
func limitCount(s stats.Snapshot, key string) uint64 {
	for _, l := range s.Limits {
		if l.Limit == key {
			return l.Count
		}
	}
	return 0
}

// connsNamed returns the statistics of the connections whose client name
// starts with prefix.
func connsNamed(s stats.Snapshot, prefix string) []stats.Connection {
	var out []stats.Connection
	for _, c := range s.ConnectionList {
		if strings.HasPrefix(c.ClientName, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// rssSampler reads the broker's RSS through c until stopped: the peak of
// what the broker reported while an attack ran. Readings are paced
// (samplePeriod), so that the garbage of the statistics requests does not
// itself fill the room the broker's garbage collector leaves; the pace
// times nothing the test waits for.
type rssSampler struct {
	stop     chan struct{}
	done     chan struct{}
	peak     uint64 // RSSBytes
	heapPeak uint64 // HeapBytes, for the report
	samples  int
	err      error
}

const samplePeriod = 5 * time.Millisecond

func sampleRSS(c *eventbus.Client) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(samplePeriod)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			snap, err := c.Stats(ctx)
			cancel()
			if err != nil {
				s.err = err
				return
			}
			s.peak, s.heapPeak = max(s.peak, snap.RSSBytes), max(s.heapPeak, snap.HeapBytes)
			s.samples++
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and returns the peak, failing tb if the
// statistics could not be read.
func (s *rssSampler) finish(tb testing.TB) uint64 {
	tb.Helper()
	close(s.stop)
	<-s.done
	if s.err != nil {
		tb.Fatalf("reading the broker's statistics during the attack: %v", s.err)
	}
	return s.peak
}

// memoryBound collects one test's readings of the broker's RSS against
// maxRSS.
type memoryBound struct {
	over []string // the readings over the bound
}

// check logs the reading rss, taken at what, and records it if it is
// over the bound.
func (m *memoryBound) check(tb testing.TB, what string, rss uint64) {
	tb.Helper()
	tb.Logf("broker RSS %s: %s", what, mib(rss))
	if rss > maxRSS {
		m.over = append(m.over, fmt.Sprintf("%s: %s", what, mib(rss)))
	}
}

// done fails tb if a reading was over the bound; under the race detector,
// whose shadow memory inflates the RSS, it skips tb instead, naming the
// readings: .ci/run judges the bound without -race.
func (m *memoryBound) done(tb testing.TB) {
	tb.Helper()
	if len(m.over) == 0 {
		return
	}
	readings := strings.Join(m.over, "; ")
	if raceEnabled && !tb.Failed() {
		// The race detector's shadow memory is part of the RSS: the bound
		// is judged without it, in .ci/run's step for this package.
		tb.Skipf("RSS over %s under the race detector, which adds its shadow memory: %s; every other bound held", mib(maxRSS), readings)
	}
	tb.Errorf("broker RSS over the bound of %s: %s", mib(maxRSS), readings)
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// eventSize is what the broker counts for a recorded event against
// max_query_bytes (correlation.Event.Size).
func eventSize(m *eventbus.Message) int64 {
	ev := correlation.Event{Topic: m.Topic, Payload: m.Payload, PublisherComponent: m.PublisherComponent}
	if meta := m.Correlation(); meta != nil {
		ev.Metadata = *meta
	}
	return ev.Size()
}

// envelopeSize is eventSize for an envelope of a QUERY_RESULT.
func envelopeSize(e *wire.Envelope) int64 {
	ev := correlation.Event{Topic: e.Topic, Payload: e.Payload, PublisherComponent: e.PublisherComponent}
	if e.Correlation != nil {
		ev.Metadata.CorrelationID, ev.Metadata.ParentID, ev.Metadata.RootID = e.Correlation.CorrelationId, e.Correlation.ParentId, e.Correlation.RootId
		ev.Metadata.Stage, ev.Metadata.SourceProcess, ev.Metadata.Tags = e.Correlation.Stage, e.Correlation.SourceProcess, e.Correlation.Tags
	}
	return ev.Size()
}

// parallel runs f(0..n-1) on n goroutines and returns their errors,
// joined.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readUntil reads frames from r until stop returns true for one, and
// returns how many frames it read; it is safe on any goroutine (it does
// not fail a test).
func readUntil(r *testutil.Raw, stop func(wire.Type, []byte) (bool, error)) (int, error) {
	for n := 1; ; n++ {
		typ, body, err := r.ReadFrame()
		if err != nil {
			return n, fmt.Errorf("after %d frames: %w", n-1, err)
		}
		done, err := stop(typ, body)
		if err != nil || done {
			return n, err
		}
	}
}

// errorFrame decodes an ERROR frame's body.
func errorFrame(body []byte) (*wire.ErrorFrame, error) {
	var f wire.ErrorFrame
	if err := f.UnmarshalVT(body); err != nil {
		return nil, fmt.Errorf("ERROR frame: %w", err)
	}
	return &f, nil
}
