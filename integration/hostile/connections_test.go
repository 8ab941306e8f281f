//go:build linux

package hostile_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/wire"
)

// helloAs sends r's opening: the preamble and a HELLO named name, claiming
// component (none: anonymous).
func helloAs(r *testutil.Raw, name, component string) {
	r.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: name, Component: component}))
}

// helloAnswer reads the broker's answer to a HELLO: HELLO_OK (nil) or the
// refusal.
func helloAnswer(t *testing.T, r *testutil.Raw) *wire.ErrorFrame {
	t.Helper()
	if _, err := r.ReadPreamble(); err != nil {
		t.Fatalf("reading the broker's preamble: %v", err)
	}
	typ, body, err := r.ReadFrame()
	if err != nil {
		t.Fatalf("reading the answer to HELLO: %v", err)
	}
	switch typ {
	case wire.TypeHelloOK:
		return nil
	case wire.TypeError:
		f, err := errorFrame(body)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Fatalf("answer to HELLO is a %v frame; want HELLO_OK or ERROR", typ)
	return nil
}

// connectionsOpen asks over r, an anonymous raw connection, for the
// statistics until they count want connections: the broker has taken
// refused ones off its count.
func connectionsOpen(t *testing.T, r *testutil.Raw, want int) {
	t.Helper()
	for id := uint64(1); ; id++ {
		r.Send(wire.TypeStatsRequest, &wire.StatsRequest{RequestId: id})
		var resp wire.StatsResponse
		if err := resp.UnmarshalVT(r.Expect(wire.TypeStatsResponse)); err != nil {
			t.Fatal(err)
		}
		if n := int(resp.Stats.GetConnections()); n == want {
			return
		} else if n < want || id > 10000 {
			t.Fatalf("the broker counts %d connections; want %d", n, want)
		}
	}
}

// serveCollectors checks that procmond and the agent connect, and that
// what procmond publishes on a restricted topic reaches the agent.
func serveCollectors(t *testing.T, b *broker) *eventbus.Client {
	t.Helper()
	ctx := testCtx(t)
	agent := b.agent(t, "agent")
	sub, err := agent.Subscribe(ctx, restrictedTopic)
	if err != nil {
		t.Fatal(err)
	}
	pm := b.procmond(t, "procmond")
	const n = 10
	for i := range n {
		if err := pm.Publish(ctx, restrictedTopic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case m := <-sub.C:
			if string(m.Payload) != strconv.Itoa(i) || m.PublisherComponent != "procmond" {
				t.Fatalf("the agent received %q from %q; want message %d from procmond", m.Payload, m.PublisherComponent, i)
			}
		case <-ctx.Done():
			t.Fatalf("the agent received %d of %d messages from procmond", i, n)
		}
	}
	return agent
}

// TestConnectionsReserved: anonymous peers open max_connections (100)
// connections and complete their handshakes, and keep them open.
//
// Bound: only max_connections - reserved_connections (90) are admitted;
// the rest are refused at hello with TOO_MANY_CONNECTIONS naming
// reserved_connections, and procmond and the agent still connect and
// exchange messages; the statistics count the limit.
func TestConnectionsReserved(t *testing.T) {
	b := startBroker(t)
	var held []*testutil.Raw
	refused := 0
	for i := range maxConnections {
		r := testutil.DialRaw(t, b.Path)
		helloAs(r, fmt.Sprintf("anon-%d", i), "")
		f := helloAnswer(t, r)
		if f == nil {
			held = append(held, r)
			continue
		}
		refused++
		if f.Code != wire.ErrorCode_ERROR_CODE_TOO_MANY_CONNECTIONS || !f.Fatal || !strings.Contains(f.Message, "(reserved_connections)") {
			t.Fatalf("anonymous connection %d refused with %v fatal=%v %q; want a fatal TOO_MANY_CONNECTIONS naming reserved_connections", i, f.Code, f.Fatal, f.Message)
		}
		r.ExpectClosed()
	}
	if want := maxConnections - reservedConnections; len(held) != want || refused != reservedConnections {
		t.Fatalf("%d anonymous connections admitted, %d refused; want %d and %d", len(held), refused, want, reservedConnections)
	}
	connectionsOpen(t, held[0], len(held))

	agent := serveCollectors(t, b)
	for i, r := range held {
		r.Ping(uint64(i + 1)) // the anonymous peers are still served
	}
	s := snapshot(t, agent)
	if n := limitCount(s, "reserved_connections"); n != reservedConnections {
		t.Errorf("reserved_connections enforced %d times in stats; want %d", n, reservedConnections)
	}
	t.Logf("%d anonymous connections held, %d refused at hello; procmond and the agent connected (%d connections); limits %v",
		len(held), refused, s.Connections, s.Limits)
}

// TestConnectionsHandshakeEvicted: max_connections (100) connections that
// never send HELLO (the handshake timeout set far off).
//
// Bound: procmond and the agent still connect, each taking the slot of
// the oldest unfinished handshake, which is closed; they exchange
// messages, and the statistics count 'max_connections (handshake
// evicted)'.
func TestConnectionsHandshakeEvicted(t *testing.T) {
	b := startBroker(t, "handshake_timeout: 10m")
	silent := make([]*testutil.Raw, maxConnections)
	for i := range silent {
		silent[i] = testutil.DialRaw(t, b.Path)
	}
	// The broker accepts in connect order, so these come after all the
	// silent ones and evict the two oldest.
	agent := serveCollectors(t, b)
	silent[0].ExpectClosed()
	silent[1].ExpectClosed()
	s := snapshot(t, agent)
	if n := limitCount(s, "max_connections (handshake evicted)"); n != 2 {
		t.Errorf("'max_connections (handshake evicted)' enforced %d times in stats; want 2", n)
	}
	if s.Connections != maxConnections {
		t.Errorf("the broker holds %d connections; want max_connections %d", s.Connections, maxConnections)
	}
	t.Logf("%d silent connections; procmond and the agent connected, evicting 2; limits %v", maxConnections, s.Limits)
}

// Lines of the broker's log (slog's text format).
var (
	logTime       = regexp.MustCompile(`^time=(\S+) `)
	logSuppressed = regexp.MustCompile(` suppressed=(\d+)`)
)

// connLog is what the broker logged about connections: the lines, their
// times, and the similar lines they say were suppressed.
type connLog struct {
	times      []time.Time
	suppressed uint64
	summaries  int // lines that only report suppressed ones
	denials    int // access denial lines, limited on their own
}

func parseConnLog(t *testing.T, lines []string) connLog {
	var l connLog
	for _, line := range lines {
		var n uint64
		if m := logSuppressed.FindStringSubmatch(line); m != nil {
			n, _ = strconv.ParseUint(m[1], 10, 64)
		}
		switch {
		case strings.Contains(line, `msg="connection closed"`), strings.Contains(line, `msg="connection refused"`):
			m := logTime.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("log line without a time: %s", line)
			}
			ts, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			l.times = append(l.times, ts)
			l.suppressed += n
		case strings.Contains(line, `msg="similar log lines suppressed"`):
			l.summaries++
			l.suppressed += n
		case strings.Contains(line, "level=WARN msg=\"acl: "):
			l.denials++
		}
	}
	slices.SortFunc(l.times, func(a, b time.Time) int { return a.Compare(b) })
	return l
}

// TestConnectionLogFlood: floods of connections refused at hello (each
// claims a component no policy lists) from several goroutines, all of
// one uid, in waves: each wave starts once the broker has summarised the
// previous one, so the floods fall in several of its one-second windows.
//
// Bound: the broker writes at most log_lines_per_second (10) connection
// lines a second for the uid: no second holds more than two windows'
// worth; the others are counted, and the next line, or a summary line,
// says how many were suppressed, so the lines written and the suppressed
// counts account for every connection.
func TestConnectionLogFlood(t *testing.T) {
	const waves, workers, perWorker = 2, 4, 50
	const perWave = workers * perWorker
	t.Parallel() // it mostly waits for the broker's summaries
	b := startBroker(t)
	var l connLog
	for wave := 1; wave <= waves; wave++ {
		err := parallel(workers, func(w int) error {
			for i := range perWorker {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				c, err := eventbus.Dial(ctx, b.Path, eventbus.WithComponent("nosuch"), eventbus.WithReconnect(false),
					eventbus.WithName(fmt.Sprintf("flood-%d-%d-%d", wave, w, i)))
				cancel()
				if err == nil {
					c.Close()
					return fmt.Errorf("wave %d worker %d: claim %d of component nosuch admitted", wave, w, i)
				}
				if !errors.Is(err, eventbus.ErrForbidden) {
					return fmt.Errorf("wave %d worker %d: claim %d: %v; want ErrForbidden", wave, w, i, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// The wave is accounted for once its last window is summarised.
		want := uint64(wave * perWave)
		if err := b.Stderr.Await(waitTimeout, func() bool {
			l = parseConnLog(t, b.Stderr.Lines())
			return l.summaries >= wave && uint64(len(l.times))+l.suppressed >= want
		}); err != nil {
			t.Fatalf("wave %d: %d connection lines, %d suppressed, %d summaries; want %d accounted for and %d summaries: %v",
				wave, len(l.times), l.suppressed, l.summaries, want, wave, err)
		}
	}
	const flood = waves * perWave
	if got := uint64(len(l.times)) + l.suppressed; got != flood {
		t.Errorf("connection lines %d and suppressed %d account for %d connections; want %d", len(l.times), l.suppressed, got, flood)
	}
	if max := waves * 2 * logLinesPerSecond; len(l.times) > max || l.suppressed == 0 {
		t.Errorf("%d connection lines written, %d suppressed, for %d connections in %d waves; want at most %d written", len(l.times), l.suppressed, flood, waves, max)
	}
	// Lines come in windows of a second, log_lines_per_second each: any
	// 2*limit+1 consecutive lines span at least a second (less the log's
	// millisecond resolution and the moment between the limiter's clock
	// and the logger's).
	const slack = 100 * time.Millisecond
	for i := 0; i+2*logLinesPerSecond < len(l.times); i++ {
		if d := l.times[i+2*logLinesPerSecond].Sub(l.times[i]); d < time.Second-slack {
			t.Errorf("%d connection lines within %v (lines %d to %d); want at most %d a second", 2*logLinesPerSecond+1, d, i, i+2*logLinesPerSecond, logLinesPerSecond)
			break
		}
	}
	span := l.times[len(l.times)-1].Sub(l.times[0])
	t.Logf("%d connections refused at hello in %d waves: %d connection lines over %v, %d suppressed (%d summary lines); %d denial lines",
		flood, waves, len(l.times), span.Round(time.Millisecond), l.suppressed, l.summaries, l.denials)
	s := snapshot(t, b.procmond(t, "operator"))
	if n := limitCount(s, "log_lines_per_second"); n != l.suppressed {
		t.Errorf("log_lines_per_second enforced %d times in stats; want the %d suppressed", n, l.suppressed)
	}
}
