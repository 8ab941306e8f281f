package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/testutil"
)

// queryPolicy: procmond and netmond admitted from this user (uid, or SID on
// Windows); events.secret.# restricted and granted to nobody, everything
// else public.
func queryPolicy(t *testing.T) *acl.Policy {
	t.Helper()
	user := testutil.UserEntry(t)
	p, err := acl.Parse("test", []byte(`default_access: public
topics:
  - pattern: events.secret.#
    access: restricted
components:
  procmond:
    `+user+`
  netmond:
    `+user+`
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHistoryOverSocket: every criterion, the limit, time bounds, and
// that a client never sees events on topics it may not subscribe to.
func TestHistoryOverSocket(t *testing.T) {
	b, path := startBroker(t, Config{Policy: queryPolicy(t)})
	ctx := testCtx(t)
	agent := inProcess(t, b)
	root := correlation.New(correlation.WithStage("forensic_collection"), correlation.WithTag("investigation_id", "INC-12345"))
	child := root.NewChild(correlation.WithStage("integrity"))
	other := correlation.New(correlation.WithStage("forensic_collection"), correlation.WithTag("investigation_id", "INC-9"))
	publishes := []struct {
		topic string
		meta  correlation.Metadata
	}{
		{"events.process.lifecycle", root}, {"events.process.integrity", child}, {"events.secret.keys", root},
		{"events.process.lifecycle", other}, {"events.network.lifecycle", root},
	}
	for i, p := range publishes {
		if err := agent.Publish(ctx, p.topic, []byte(fmt.Sprint(i)), eventbus.WithCorrelation(p.meta)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, agent)
	anon := dial(t, path)

	tests := []struct {
		name string
		q    eventbus.HistoryQuery
		want []string // payloads, in receive order
	}{
		{"tag", eventbus.HistoryQuery{Tags: map[string]string{"investigation_id": "INC-12345"}}, []string{"0", "1", "4"}},
		{"tag and stage", eventbus.HistoryQuery{Tags: map[string]string{"investigation_id": "INC-12345"}, Stage: "integrity"}, []string{"1"}},
		{"correlation", eventbus.HistoryQuery{CorrelationID: root.CorrelationID}, []string{"0", "4"}},
		{"root", eventbus.HistoryQuery{RootID: root.RootID}, []string{"0", "1", "4"}},
		{"stage", eventbus.HistoryQuery{Stage: "forensic_collection"}, []string{"0", "3", "4"}},
		{"limit keeps the most recent", eventbus.HistoryQuery{RootID: root.RootID, Limit: 2}, []string{"1", "4"}},
		{"everything", eventbus.HistoryQuery{}, []string{"0", "1", "3", "4"}},
		{"until the beginning", eventbus.HistoryQuery{Until: time.Unix(0, 1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := anon.History(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.Payload))
				if m.Correlation() == nil || m.PublisherPID != os.Getpid() {
					t.Errorf("message %s: correlation %v, publisher pid %d; want metadata and pid %d", m.Payload, m.Correlation(), m.PublisherPID, os.Getpid())
				}
			}
			if !slicesEqual(got, tt.want) {
				t.Errorf("History(%+v) = %q; want %q (events.secret.keys is never visible)", tt.q, got, tt.want)
			}
		})
	}

	// The agent may read the restricted topic; the anonymous client's
	// timeline omits it.
	if msgs, _ := agent.History(ctx, eventbus.HistoryQuery{CorrelationID: root.CorrelationID}); len(msgs) != 3 {
		t.Errorf("agent History(root correlation) = %d messages; want 3 including events.secret.keys", len(msgs))
	}
	tl, err := anon.Timeline(ctx, root.RootID)
	if err != nil {
		t.Fatal(err)
	}
	want := b.Tracker().Timeline(root.RootID)
	if len(tl) != len(want)-1 || tl[1].Stage != "integrity" || tl[1].Depth != 1 {
		t.Errorf("Timeline over the socket = %+v; want the tracker's %d entries less the restricted one, with integrity at depth 1", tl, len(want))
	}
}

// TestWorkflowsOverSocket: workflow state is for registered components.
func TestWorkflowsOverSocket(t *testing.T) {
	b, path := startBroker(t, Config{Policy: queryPolicy(t)})
	ctx := testCtx(t)
	agent := inProcess(t, b)
	root := correlation.New(correlation.WithStage("enumeration"))
	if err := agent.Publish(ctx, "events.process.batch", nil, eventbus.WithCorrelation(root), eventbus.WithFinal()); err != nil {
		t.Fatal(err)
	}
	flush(t, agent)
	if _, err := dial(t, path).Workflows(ctx); !errors.Is(err, eventbus.ErrForbidden) {
		t.Errorf("anonymous Workflows = %v; want eventbus.ErrForbidden", err)
	}
	proc := dial(t, path, eventbus.WithComponent("procmond"))
	list, err := proc.Workflows(ctx)
	if err != nil || len(list) != 1 || list[0].RootID != root.RootID {
		t.Fatalf("Workflows = %+v, %v; want the one workflow", list, err)
	}
	w, ok, err := proc.Workflow(ctx, root.RootID)
	if err != nil || !ok || len(w.Stages) != 1 || !w.Stages[0].Completed || w.Events != 1 {
		t.Errorf("Workflow = %+v, %v, %v; want one completed stage with one event", w, ok, err)
	}
	if _, ok, err := proc.Workflow(ctx, "no-such-root"); ok || err != nil {
		t.Errorf("Workflow(unknown) = found %v, %v; want not found, nil", ok, err)
	}
}

// TestWaitOverSocket: a socket client waits for two collectors' final
// results; a wait whose deadline passes returns what it saw.
func TestWaitOverSocket(t *testing.T) {
	b, path := startBroker(t, Config{Policy: queryPolicy(t)})
	ctx := testCtx(t)
	waiter := dial(t, path)
	task := correlation.New(correlation.WithStage("enumeration"))

	done := make(chan []*eventbus.Message, 1)
	errc := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		msgs, err := waiter.Wait(wctx, task.CorrelationID, correlation.FinalPublishers(2))
		done <- msgs
		errc <- err
	}()
	// The results must arrive while the broker holds the wait (it would
	// also count events recorded before it).
	waitFor(t, "the broker to hold the wait", func() bool { return b.Tracker().Stats().Waiters == 1 })
	for _, name := range []string{"procmond", "netmond"} {
		c := dial(t, path, eventbus.WithComponent(name))
		if err := c.Publish(ctx, "events.process.batch", []byte(name), eventbus.WithCorrelation(task), eventbus.WithFinal()); err != nil {
			t.Fatal(err)
		}
		flush(t, c)
	}
	if msgs, err := <-done, <-errc; err != nil || len(msgs) != 2 {
		t.Errorf("Wait(2 final publishers) = %d messages, %v; want 2, nil", len(msgs), err)
	}

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	msgs, err := waiter.Wait(short, task.CorrelationID, correlation.FinalPublishers(3))
	if !errors.Is(err, eventbus.ErrWaitUnmet) || len(msgs) != 2 {
		t.Errorf("Wait(3 final publishers) = %d messages, %v; want the 2 seen and eventbus.ErrWaitUnmet", len(msgs), err)
	}
}

// TestWaitExpiredDeadline: a wait whose deadline has passed returns at
// once and leaves no waiter on the broker.
func TestWaitExpiredDeadline(t *testing.T) {
	b, path := startBroker(t, Config{})
	c := dial(t, path)
	ctx, cancel := context.WithDeadline(testCtx(t), time.Now().Add(-time.Second))
	defer cancel()
	start := time.Now()
	_, err := c.Wait(ctx, "some-correlation", correlation.EventCount(1))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("Wait(expired ctx) = %v after %v; want DeadlineExceeded at once", err, time.Since(start))
	}
	flush(t, c)
	if n := b.Tracker().Stats().Waiters; n != 0 {
		t.Errorf("broker holds %d waiters; want 0", n)
	}
}

// TestQueryBytesBounded: a history query and a wait hold at most
// max_query_bytes: the most recent that fit come back marked truncated,
// and the limit is counted.
func TestQueryBytesBounded(t *testing.T) {
	const payload = 64 << 10
	b, path := startBroker(t, Config{Policy: queryPolicy(t), MaxQueryBytes: 5 * payload})
	ctx := testCtx(t)
	agent := inProcess(t, b)
	task := correlation.New(correlation.WithTag("investigation_id", "INC-1"))
	for i := range 20 {
		if err := agent.Publish(ctx, "events.process.batch", seqPayload(uint64(i), payload), eventbus.WithCorrelation(task)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, agent)
	c := dial(t, path)
	msgs, err := c.History(ctx, eventbus.HistoryQuery{Tags: map[string]string{"investigation_id": "INC-1"}})
	if !errors.Is(err, eventbus.ErrTruncated) || len(msgs) == 0 || len(msgs) >= 5 {
		t.Fatalf("History over max_query_bytes = %d messages, %v; want fewer than 5 and ErrTruncated", len(msgs), err)
	}
	if got := seqOf(t, msgs[len(msgs)-1]); got != 19 {
		t.Errorf("last message returned is %d; want the most recent, 19", got)
	}
	wmsgs, err := c.Wait(ctx, task.CorrelationID, correlation.EventCount(20))
	if err != nil || len(wmsgs) == 0 || len(wmsgs) >= 5 {
		t.Errorf("Wait over max_query_bytes = %d messages, %v; want fewer than 5, nil", len(wmsgs), err)
	}
	if n := limitCount(b.Stats(), "max_query_bytes"); n != 2 {
		t.Errorf("max_query_bytes in stats = %d; want 2", n)
	}
}

// TestWaitRevealsNothingRestricted: an anonymous wait counts only the
// events it may read, so its answer says nothing of restricted ones.
func TestWaitRevealsNothingRestricted(t *testing.T) {
	b, path := startBroker(t, Config{Policy: queryPolicy(t)})
	ctx := testCtx(t)
	agent := inProcess(t, b)
	task := correlation.New()
	for range 3 {
		if err := agent.Publish(ctx, "events.secret.keys", []byte("s"), eventbus.WithCorrelation(task), eventbus.WithFinal()); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, agent)
	anon := dial(t, path)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	msgs, err := anon.Wait(short, task.CorrelationID, correlation.EventCount(1))
	if !errors.Is(err, eventbus.ErrWaitUnmet) || len(msgs) != 0 || !strings.Contains(err.Error(), "0 final publishers, 0 events") {
		t.Errorf("anonymous Wait on restricted events = %d messages, %v; want none, unmet with 0 seen", len(msgs), err)
	}
}

// TestQueryMemoryBounded: queries and waits in progress hold at most
// max_query_memory together, anonymous peers a quarter of it; a reply
// written gives its share back, and the agent is not counted.
func TestQueryMemoryBounded(t *testing.T) {
	const perQuery = 1 << 20
	b, path := startBroker(t, Config{Policy: queryPolicy(t), MaxQueryBytes: perQuery / 2, MaxQueryMemory: 4 * perQuery}) // each counts perQuery
	ctx := testCtx(t)
	never := correlation.EventCount(1 << 20)
	startWaits := func(c *eventbus.Client, n int) []chan error {
		var chs []chan error
		for range n {
			ch := make(chan error, 1)
			go func() {
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				_, err := c.Wait(wctx, "nothing-ever", never)
				ch <- err
			}()
			chs = append(chs, ch)
		}
		return chs
	}
	anon := dial(t, path)
	anonWaits := startWaits(anon, 1) // the anonymous quarter: one query's worth
	waitFor(t, "the anonymous wait", func() bool { return b.Tracker().Stats().Waiters == 1 })
	if _, err := anon.History(ctx, eventbus.HistoryQuery{Stage: "x"}); err == nil || !strings.Contains(err.Error(), "a quarter of max_query_memory") {
		t.Errorf("anonymous history past its quarter = %v; want a refusal naming the anonymous share", err)
	}
	procmond := dial(t, path, eventbus.WithComponent("procmond"))
	startWaits(procmond, 3)
	waitFor(t, "four waits", func() bool { return b.Tracker().Stats().Waiters == 4 })
	if _, err := procmond.History(ctx, eventbus.HistoryQuery{Stage: "x"}); err == nil || !strings.Contains(err.Error(), "max_query_memory") {
		t.Errorf("history past max_query_memory = %v; want a refusal naming it", err)
	}
	agent := inProcess(t, b)
	if _, err := agent.History(ctx, eventbus.HistoryQuery{Stage: "x"}); err != nil {
		t.Errorf("the agent's history with the budget spent = %v; want an answer", err)
	}
	anon.Close() // its wait ends, and with the connection its share
	<-anonWaits[0]
	waitFor(t, "the anonymous share back", func() bool { return b.queryHeld.Load() == 3*perQuery })
	if _, err := procmond.History(ctx, eventbus.HistoryQuery{Stage: "x"}); err != nil {
		t.Errorf("history once a share is back = %v; want an answer", err)
	}
	waitFor(t, "the answered history's share back", func() bool { return b.queryHeld.Load() == 3*perQuery })
	if n := limitCount(b.Stats(), "max_query_memory"); n != 2 {
		t.Errorf("max_query_memory in stats = %d; want 2", n)
	}
}
