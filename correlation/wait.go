package correlation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Condition says when a correlation's results are complete; make one with
// FinalPublishers, EventCount or QuietFor.
type Condition struct {
	kind  condKind
	n     int
	quiet time.Duration
}

type condKind uint8

const (
	condUnset condKind = iota
	condFinal
	condCount
	condQuiet
)

// FinalPublishers holds once n distinct publishers (verified pid and
// component) have recorded an event marked Final.
func FinalPublishers(n int) Condition { return Condition{kind: condFinal, n: n} }

// EventCount holds once n events have been recorded.
func EventCount(n int) Condition { return Condition{kind: condCount, n: n} }

// QuietFor holds once at least one event has been recorded and then none
// for d.
func QuietFor(d time.Duration) Condition { return Condition{kind: condQuiet, quiet: d} }

// String returns the name used in messages and output.
func (c Condition) String() string {
	switch c.kind {
	case condFinal:
		return plural(c.n, "final publisher")
	case condCount:
		return plural(c.n, "event")
	case condQuiet:
		return c.quiet.String() + " of quiet"
	}
	return "unset condition"
}

func (c Condition) validate() error {
	switch {
	case c.kind == condUnset:
		return invalid("wait condition", "unset")
	case c.kind == condQuiet && c.quiet <= 0:
		return invalid("wait condition", fmt.Sprintf("quiet period not positive: %v", c.quiet))
	case c.kind != condQuiet && c.n < 1:
		return invalid("wait condition", fmt.Sprintf("count not positive: %d", c.n))
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// WaitError is a Wait that ended before its condition held. errors.Is
// matches Err: context.DeadlineExceeded, context.Canceled or ErrClosed.
type WaitError struct {
	CorrelationID   string
	Condition       Condition
	Events          int // events seen for the correlation
	FinalPublishers int // distinct publishers among its final events
	Err             error
}

// Error returns the message.
func (e *WaitError) Error() string {
	why := e.Err.Error()
	switch {
	case errors.Is(e.Err, context.DeadlineExceeded):
		why = "deadline exceeded"
	case errors.Is(e.Err, context.Canceled):
		why = "canceled"
	case errors.Is(e.Err, ErrClosed):
		why = "tracker closed"
	}
	return fmt.Sprintf("correlation: wait for %s on %s: %s with %s, %s", e.Condition, e.CorrelationID,
		why, plural(e.FinalPublishers, "final publisher"), plural(e.Events, "event"))
}

// Unwrap returns the cause.
func (e *WaitError) Unwrap() error { return e.Err }

// WaitOptions bounds what a Wait holds and what it counts.
type WaitOptions struct {
	// MaxBytes bounds the events kept, each counted as Event.Size; events
	// past it are counted for the condition but not returned. 0 means no
	// bound but Config.MaxEvents, as Wait has.
	MaxBytes int64
	// Visible, if set, reports whether the waiter may see events on a
	// topic; the others are neither counted nor kept, so a wait reveals
	// nothing about them. It is called with the tracker's lock held.
	Visible func(topic string) bool
}

// waiter is one Wait in progress; its fields are guarded by Tracker.mu.
type waiter struct {
	cond      Condition
	opts      WaitOptions
	got       hits  // the correlation's events, up to MaxEvents and opts.MaxBytes
	bytes     int64 // the size of got
	truncated bool  // an event was counted but not kept
	seen      int   // events recorded for the correlation, kept or not
	finals    map[publisher]struct{}
	wake      chan struct{} // buffered 1: Record never blocks on it
}

func (w *waiter) add(e *entry, keep int) {
	if w.opts.Visible != nil && !w.opts.Visible(e.meta.topic) {
		return
	}
	w.seen++
	if len(w.got.evs) < keep && w.bytes+int64(e.size) <= w.opts.MaxBytes {
		w.got.add(e)
		w.bytes += int64(e.size)
	} else {
		w.truncated = true
	}
	if e.final {
		if w.finals == nil {
			w.finals = make(map[publisher]struct{})
		}
		w.finals[e.publisher()] = struct{}{}
	}
}

func (w *waiter) met() bool {
	switch w.cond.kind {
	case condFinal:
		return len(w.finals) >= w.cond.n
	case condCount:
		return w.seen >= w.cond.n
	}
	return false // quiet periods are timed by Wait
}

func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// notifyLocked hands e to the waiters on its correlation and wakes those it
// may satisfy.
func (t *Tracker) notifyLocked(e *entry) {
	for _, w := range t.waiters[e.meta.corr.key] {
		w.add(e, t.cfg.MaxEvents)
		if w.cond.kind == condQuiet || w.met() {
			w.signal()
		}
	}
}

// Wait blocks until the events of correlationID satisfy until, counting
// those already in the history, and returns them in receive order. Events
// recorded while it waits are kept for it even if the history evicts them
// (up to MaxEvents of them). If ctx ends first (or the tracker is closed),
// it returns the events so far and a *WaitError saying what was seen.
// Record wakes it; it never polls.
func (t *Tracker) Wait(ctx context.Context, correlationID string, until Condition) ([]Event, error) {
	evs, _, err := t.WaitWith(ctx, correlationID, until, WaitOptions{})
	return evs, err
}

// WaitWith is Wait bounded by o; truncated reports that events were
// counted but not kept.
func (t *Tracker) WaitWith(ctx context.Context, correlationID string, until Condition, o WaitOptions) (evs []Event, truncated bool, err error) {
	if err := checkText("correlation id", correlationID, MaxIDBytes, true); err != nil {
		return nil, false, err
	}
	if err := until.validate(); err != nil {
		return nil, false, err
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = math.MaxInt64
	}
	w := &waiter{cond: until, opts: o, wake: make(chan struct{}, 1)}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false, ErrClosed
	}
	if p := t.byCorr[correlationID]; p != nil {
		f := t.findLocked(p.metas, Query{}, nil)
		t.eachLocked(&f, func(e *entry) { w.add(e, t.cfg.MaxEvents) })
	}
	if w.met() {
		t.mu.Unlock()
		return w.got.finish(), w.truncated, nil
	}
	if t.nwait >= t.cfg.MaxWaiters {
		t.mu.Unlock()
		return nil, false, fmt.Errorf("%w: limit %d", ErrTooManyWaiters, t.cfg.MaxWaiters)
	}
	t.waiters[correlationID] = append(t.waiters[correlationID], w)
	t.nwait++
	t.mu.Unlock()

	err = t.await(ctx, w)

	t.mu.Lock()
	ws := t.waiters[correlationID]
	if ws = slices.DeleteFunc(ws, func(x *waiter) bool { return x == w }); len(ws) == 0 {
		delete(t.waiters, correlationID)
	} else {
		t.waiters[correlationID] = ws
	}
	t.nwait--
	got, seen, finals, truncated := w.got, w.seen, len(w.finals), w.truncated
	t.mu.Unlock()
	if err != nil {
		err = &WaitError{CorrelationID: correlationID, Condition: until, Events: seen, FinalPublishers: finals, Err: err}
	}
	return got.finish(), truncated, err
}

// await sleeps until w's condition holds (nil) or ctx ends or the tracker
// closes (the reason). A quiet period is a timer owned by this call,
// re-armed whenever an event arrives.
func (t *Tracker) await(ctx context.Context, w *waiter) error {
	var quiet Timer
	var fire <-chan time.Time
	defer func() {
		if quiet != nil {
			quiet.Stop()
		}
	}()
	armed := 0 // w.seen when the quiet timer was last armed
	for {
		t.mu.Lock()
		closed, met, seen := t.closed, w.met(), w.seen
		t.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case met:
			return nil
		}
		if w.cond.kind == condQuiet && seen > armed {
			armed = seen
			if quiet == nil {
				quiet = t.cfg.NewTimer(w.cond.quiet)
				fire = quiet.C()
			} else {
				quiet.Reset(w.cond.quiet)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
		case <-fire:
			t.mu.Lock()
			still := w.seen == armed
			t.mu.Unlock()
			if still {
				return nil
			}
		}
	}
}

// Parts returns the condition's terms, for sending it: exactly one of
// finalPublishers, events and quiet is set.
func (c Condition) Parts() (finalPublishers, events int, quiet time.Duration) {
	switch c.kind {
	case condFinal:
		return c.n, 0, 0
	case condCount:
		return 0, c.n, 0
	case condQuiet:
		return 0, 0, c.quiet
	}
	return 0, 0, 0
}
