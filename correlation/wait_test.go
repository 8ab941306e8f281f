package correlation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitResult is what a Wait started in the background returned.
type waitResult struct {
	events []Event
	err    error
}

// startWait runs Wait in a goroutine and waits until it is registered, so
// that what follows tests the wake-up, not the initial check.
func startWait(t *testing.T, tr *Tracker, ctx context.Context, id string, c Condition) <-chan waitResult {
	t.Helper()
	before := tr.Stats().Waiters
	ch := make(chan waitResult, 1)
	go func() {
		evs, err := tr.Wait(ctx, id, c)
		ch <- waitResult{evs, err}
	}()
	for deadline := time.Now().Add(5 * time.Second); tr.Stats().Waiters == before; {
		if time.Now().After(deadline) {
			t.Fatal("Wait never registered")
		}
		time.Sleep(time.Millisecond)
	}
	return ch
}

func mustReturn(t *testing.T, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return")
		return waitResult{}
	}
}

func notReturned(t *testing.T, ch <-chan waitResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Wait returned early: %d events, %v", len(r.events), r.err)
	case <-time.After(20 * time.Millisecond):
	}
}

func checkNoWaiters(t *testing.T, tr *Tracker) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.waiters) != 0 {
		t.Errorf("waiters left behind: %v", tr.waiters)
	}
}

func TestWaitEventCount(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	record(t, tr, clk, md("X", "", "R", "s"), 1, "agent", false)
	ch := startWait(t, tr, context.Background(), "X", EventCount(3))
	record(t, tr, clk, md("Y", "", "R", "s"), 1, "agent", false) // another correlation
	record(t, tr, clk, md("X", "", "R", "s"), 10, "procmond", false)
	notReturned(t, ch)
	record(t, tr, clk, md("X", "", "R", "s"), 11, "procmond", false)
	r := mustReturn(t, ch)
	if r.err != nil || len(r.events) != 3 {
		t.Fatalf("Wait(EventCount(3)) = %d events, %v; want 3, nil", len(r.events), r.err)
	}
	for i, pid := range []int{1, 10, 11} {
		if r.events[i].PublisherPID != pid || r.events[i].Metadata.CorrelationID != "X" {
			t.Errorf("event %d from pid %d of %s; want pid %d of X", i, r.events[i].PublisherPID, r.events[i].Metadata.CorrelationID, pid)
		}
	}
	// Already met: returns at once from the history.
	evs, err := tr.Wait(context.Background(), "X", EventCount(2))
	if err != nil || len(evs) != 3 {
		t.Errorf("Wait on a met condition = %d events, %v; want 3, nil", len(evs), err)
	}
	checkNoWaiters(t, tr)
}

func TestWaitFinalPublishers(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	ch := startWait(t, tr, context.Background(), "X", FinalPublishers(2))
	record(t, tr, clk, md("X", "", "R", "s"), 10, "procmond", true)
	record(t, tr, clk, md("X", "", "R", "s"), 10, "procmond", true) // same publisher again
	record(t, tr, clk, md("X", "", "R", "s"), 11, "procmond", false)
	record(t, tr, clk, md("Y", "", "R", "s"), 12, "procmond", true) // another correlation
	notReturned(t, ch)
	record(t, tr, clk, md("X", "", "R", "s"), 10, "netmond", true) // same pid, other component
	r := mustReturn(t, ch)
	if r.err != nil || len(r.events) != 4 {
		t.Fatalf("Wait(FinalPublishers(2)) = %d events, %v; want 4, nil", len(r.events), r.err)
	}
	checkNoWaiters(t, tr)
}

// TestWaitQuiet: a quiet-period wait returns once no event has arrived
// for the period, counted on the tracker's clock from the last event.
func TestWaitQuiet(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	const quiet = 200 * time.Millisecond
	ch := startWait(t, tr, context.Background(), "X", QuietFor(quiet))
	clk.tick(2 * quiet)
	notReturned(t, ch) // no event yet: quiet has not begun
	for range 3 {
		record(t, tr, clk, md("X", "", "R", "s"), 1, "agent", false) // moves the clock 1ms
		clk.waitArmed(t)                                             // the wait saw it and re-armed
		clk.tick(quiet / 2)
		notReturned(t, ch)
	}
	clk.tick(quiet/2 - time.Millisecond) // 1ms short of the period since the last event
	notReturned(t, ch)
	clk.tick(time.Millisecond)
	r := mustReturn(t, ch)
	if r.err != nil || len(r.events) != 3 {
		t.Fatalf("Wait(QuietFor) = %d events, %v; want 3, nil", len(r.events), r.err)
	}
	checkNoWaiters(t, tr)
}

func TestWaitDeadline(t *testing.T) {
	tests := []struct {
		name    string
		cond    Condition
		events  []bool // final flags of the events recorded for X
		wantErr string
	}{
		{"final publishers", FinalPublishers(2), []bool{false, true, false},
			"correlation: wait for 2 final publishers on X: deadline exceeded with 1 final publisher, 3 events"},
		{"event count", EventCount(5), []bool{false},
			"correlation: wait for 5 events on X: deadline exceeded with 0 final publishers, 1 event"},
		{"quiet, nothing arrives", QuietFor(time.Minute), nil,
			"correlation: wait for 1m0s of quiet on X: deadline exceeded with 0 final publishers, 0 events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clk := newTestTracker(t, Config{})
			for i, final := range tt.events {
				record(t, tr, clk, md("X", "", "R", "s"), 10+i, "procmond", final)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			evs, err := tr.Wait(ctx, "X", tt.cond)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Wait = %v; want %q", err, tt.wantErr)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(err, context.DeadlineExceeded) = false")
			}
			var we *WaitError
			if !errors.As(err, &we) || we.Events != len(tt.events) {
				t.Errorf("WaitError = %+v; want Events %d", we, len(tt.events))
			}
			if len(evs) != len(tt.events) {
				t.Errorf("partial results = %d events; want %d", len(evs), len(tt.events))
			}
			checkNoWaiters(t, tr)
		})
	}
}

func TestWaitCancelAndClose(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := startWait(t, tr, ctx, "X", EventCount(2))
	record(t, tr, clk, md("X", "", "R", "s"), 1, "agent", false)
	cancel()
	r := mustReturn(t, ch)
	if !errors.Is(r.err, context.Canceled) || len(r.events) != 1 {
		t.Errorf("cancelled Wait = %d events, %v; want 1, context.Canceled", len(r.events), r.err)
	}
	checkNoWaiters(t, tr)

	ch = startWait(t, tr, context.Background(), "X", EventCount(5))
	tr.Close()
	r = mustReturn(t, ch)
	if !errors.Is(r.err, ErrClosed) || len(r.events) != 1 {
		t.Errorf("Wait across Close = %d events, %v; want 1, ErrClosed", len(r.events), r.err)
	}
	if _, err := tr.Wait(context.Background(), "X", EventCount(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close = %v; want ErrClosed", err)
	}
	checkNoWaiters(t, tr)
}

func TestWaitKeepsEventsPastEviction(t *testing.T) {
	tr, clk := newTestTracker(t, Config{MaxEvents: 3})
	ch := startWait(t, tr, context.Background(), "X", EventCount(3))
	for _, id := range []string{"X", "Y", "Y", "Y", "X", "X"} { // the Ys evict the first X
		record(t, tr, clk, md(id, "", "R", "s"), 1, "procmond", false)
	}
	r := mustReturn(t, ch)
	if n := len(tr.ByCorrelation("X")); r.err != nil || len(r.events) != 3 || n != 2 {
		t.Errorf("Wait = %d events, %v (history holds %d); want 3, nil (history 2)", len(r.events), r.err, n)
	}
}

func TestWaitConcurrent(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	const waiters = 20
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := range waiters {
		id := fmt.Sprint("X", i%4)
		need := 1 + i%5
		wg.Go(func() {
			evs, err := tr.Wait(context.Background(), id, EventCount(need))
			switch {
			case err != nil:
				errs <- err
			case len(evs) < need:
				errs <- fmt.Errorf("Wait(%s, %d events) returned %d", id, need, len(evs))
			}
		})
	}
	for i := range 5 * 4 {
		record(t, tr, clk, md(fmt.Sprint("X", i%4), "", "R", "s"), i, "procmond", false)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkNoWaiters(t, tr)
	if s := tr.Stats(); s.Waiters != 0 {
		t.Errorf("Stats().Waiters = %d; want 0", s.Waiters)
	}
}

func TestWaitTooManyWaiters(t *testing.T) {
	tr, clk := newTestTracker(t, Config{MaxWaiters: 1})
	ch := startWait(t, tr, context.Background(), "X", EventCount(1))
	if _, err := tr.Wait(context.Background(), "Y", EventCount(1)); !errors.Is(err, ErrTooManyWaiters) {
		t.Errorf("second Wait = %v; want ErrTooManyWaiters", err)
	}
	record(t, tr, clk, md("X", "", "R", "s"), 1, "agent", false)
	if r := mustReturn(t, ch); r.err != nil {
		t.Fatalf("first Wait = %v", r.err)
	}
	// The slot is free again; an already-met wait returns without one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := tr.Wait(ctx, "Y", EventCount(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait after the first returned = %v; want a deadline", err)
	}
}

func TestWaitInvalid(t *testing.T) {
	tr, _ := newTestTracker(t, Config{})
	tests := []struct {
		name string
		id   string
		cond Condition
	}{
		{"unset condition", "X", Condition{}},
		{"zero publishers", "X", FinalPublishers(0)},
		{"negative count", "X", EventCount(-1)},
		{"zero quiet", "X", QuietFor(0)},
		{"empty id", "", EventCount(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tr.Wait(context.Background(), tt.id, tt.cond); !errors.Is(err, ErrInvalid) {
				t.Errorf("Wait(%q, %v) = %v; want ErrInvalid", tt.id, tt.cond, err)
			}
		})
	}
}

// TestWaitWithBounds: a wait counts only what Visible accepts, so it
// reveals nothing about other topics, and keeps at most MaxBytes.
func TestWaitWithBounds(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	ev := record(t, tr, clk, md("X", "", "R", "s"), 1, "procmond", false)
	hidden := func(topic string) bool { return false }
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second)) // ends at once, after the history is counted
	defer cancel()
	evs, _, err := tr.WaitWith(ctx, "X", EventCount(1), WaitOptions{Visible: hidden})
	var we *WaitError
	if !errors.As(err, &we) || we.Events != 0 || len(evs) != 0 {
		t.Fatalf("WaitWith(invisible) = %d events, %v; want none seen and the deadline", len(evs), err)
	}
	for range 4 {
		record(t, tr, clk, md("X", "", "R", "s"), 1, "procmond", false)
	}
	evs, truncated, err := tr.WaitWith(context.Background(), "X", EventCount(5), WaitOptions{MaxBytes: 2*ev.Size() + 1})
	if err != nil || len(evs) != 2 || !truncated {
		t.Errorf("WaitWith(MaxBytes of 2 events) = %d events, truncated %v, %v; want 2, true, nil", len(evs), truncated, err)
	}
	checkNoWaiters(t, tr)
}
