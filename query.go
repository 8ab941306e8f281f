package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

// HistoryQuery selects events from the broker's correlation history
// . Criteria are ANDed; empty ones match all.
type HistoryQuery struct {
	// Tags must all be present with these values.
	Tags          map[string]string
	CorrelationID string
	RootID        string
	Stage         string
	// Since and Until bound the broker's receive time to [Since, Until).
	Since, Until time.Time
	// Limit keeps the most recent matches; 0 means the broker's default
	// (1000).
	Limit int
}

// ErrTruncated: the broker had more results than fit in one reply; the
// most recent were returned.
var ErrTruncated = errors.New("eventbus: results truncated to fit one reply")

// History returns the recorded messages that match q and that this client
// may subscribe to, in receive order. If there were more than fit in one
// reply, it returns the most recent with an error wrapping ErrTruncated.
func (c *Client) History(ctx context.Context, q HistoryQuery) ([]*Message, error) {
	hq := &wire.HistoryQuery{Tags: q.Tags, CorrelationId: q.CorrelationID, RootId: q.RootID, Stage: q.Stage,
		Since: wireconv.UnixNano(q.Since), Until: wireconv.UnixNano(q.Until), Limit: uint32(max(q.Limit, 0))}
	res, err := c.query(ctx, &wire.Query{Kind: &wire.Query_History{History: hq}})
	if err != nil {
		return nil, fmt.Errorf("eventbus: history: %w", err)
	}
	msgs := messagesFromWire(res.Events)
	if res.Truncated {
		return msgs, fmt.Errorf("%w: history returned the most recent %d", ErrTruncated, len(msgs))
	}
	return msgs, nil
}

// Timeline returns the workflow rooted at root in receive order.
func (c *Client) Timeline(ctx context.Context, root string) ([]correlation.TimelineEntry, error) {
	res, err := c.query(ctx, &wire.Query{Kind: &wire.Query_Timeline{Timeline: root}})
	if err != nil {
		return nil, fmt.Errorf("eventbus: timeline %s: %w", root, err)
	}
	out := make([]correlation.TimelineEntry, 0, len(res.Timeline))
	for _, e := range res.Timeline {
		out = append(out, wireconv.TimelineFromWire(e))
	}
	return out, nil
}

// Workflow returns the state of the workflow rooted at root, and whether
// the broker tracks one.
func (c *Client) Workflow(ctx context.Context, root string) (correlation.WorkflowState, bool, error) {
	res, err := c.query(ctx, &wire.Query{Kind: &wire.Query_Workflow{Workflow: root}})
	if err != nil {
		return correlation.WorkflowState{}, false, fmt.Errorf("eventbus: workflow %s: %w", root, err)
	}
	if !res.Found || res.Workflow == nil {
		return correlation.WorkflowState{}, false, nil
	}
	return wireconv.WorkflowFromWire(res.Workflow), true, nil
}

// Workflows lists the workflows the broker tracks.
func (c *Client) Workflows(ctx context.Context) ([]correlation.WorkflowSummary, error) {
	res, err := c.query(ctx, &wire.Query{Kind: &wire.Query_Workflows{Workflows: &wire.WorkflowsQuery{}}})
	if err != nil {
		return nil, fmt.Errorf("eventbus: workflows: %w", err)
	}
	out := make([]correlation.WorkflowSummary, 0, len(res.Workflows))
	for _, w := range res.Workflows {
		out = append(out, wireconv.SummaryFromWire(w))
	}
	return out, nil
}

// ErrWaitUnmet: a wait ended (its deadline passed, or the broker stopped)
// before its condition held; the messages collected come with it.
var ErrWaitUnmet = errors.New("eventbus: wait condition not met")

// waitGrace is how long past its deadline Wait listens for the broker's
// answer, which carries the results collected.
const waitGrace = 2 * time.Second

// waitMargin is how long before ctx's deadline the broker is asked to
// answer a wait, so that its partial answer arrives while ctx lasts: the
// client then never waits past ctx for it.
const waitMargin = 20 * time.Millisecond

// Wait blocks until the broker has recorded what until asks for on
// correlationID (final results from N publishers, N messages, or a quiet
// period), or ctx ends, and returns the messages recorded for it that
// this client may read. The broker stops waiting just before ctx's
// deadline (30s without one); if the condition did not hold, the partial
// results come with an error wrapping ErrWaitUnmet that says what was
// seen. Wait never outlasts ctx: without the broker's answer by then, it
// returns ctx's error.
func (c *Client) Wait(ctx context.Context, correlationID string, until correlation.Condition) ([]*Message, error) {
	timeout := wire.DefaultWaitTimeout
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = min(time.Until(dl), wire.MaxWaitTimeout)
		if timeout > 2*waitMargin {
			timeout -= waitMargin
		}
	}
	if timeout <= 0 || ctx.Err() != nil {
		// Nothing to wait for, and the broker must not hold a wait for a
		// caller that has already given up.
		return nil, fmt.Errorf("eventbus: wait %s: %w", correlationID, context.DeadlineExceeded)
	}
	wq, err := waitQuery(correlationID, until, timeout)
	if err != nil {
		return nil, err
	}
	rctx := ctx
	if !hasDeadline { // the broker answers at our own default: wait a little past it
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, timeout+waitGrace)
		defer cancel()
	}
	res, err := c.query(rctx, &wire.Query{Kind: &wire.Query_Wait{Wait: wq}})
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("eventbus: wait %s: %w", correlationID, err)
	}
	msgs := messagesFromWire(res.Events)
	if res.WaitUnmet != "" {
		return msgs, fmt.Errorf("%w: %s", ErrWaitUnmet, res.WaitUnmet)
	}
	return msgs, nil
}

func (c *Client) query(ctx context.Context, q *wire.Query) (*wire.QueryResult, error) {
	reply, err := c.roundTrip(ctx, wire.TypeQuery, func(id uint64) wire.Message {
		q.RequestId = id
		return q
	})
	if err != nil {
		return nil, err
	}
	res, ok := reply.(*wire.QueryResult)
	if !ok {
		return nil, fmt.Errorf("broker answered a QUERY with %T", reply)
	}
	return res, nil
}

func messagesFromWire(envs []*wire.Envelope) []*Message {
	out := make([]*Message, 0, len(envs))
	for _, e := range envs {
		out = append(out, envelopeToMessage(e))
	}
	return out
}

// envelopeToMessage converts a history or wait result.
func envelopeToMessage(e *wire.Envelope) *Message {
	m := &Message{
		Topic:              e.Topic,
		Payload:            e.Payload,
		PublishedAt:        wireconv.FromUnixNano(e.PublishedAt),
		ReceivedAt:         wireconv.FromUnixNano(e.ReceivedAt),
		PublisherPID:       int(e.PublisherPid),
		PublisherUID:       e.PublisherUid,
		PublisherComponent: e.PublisherComponent,
		Final:              e.Final,
	}
	if e.Correlation != nil {
		meta := wireconv.MetadataFromWire(e.Correlation)
		m.meta = &meta
	}
	return m
}

// waitQuery encodes a wait for the client.
func waitQuery(id string, until correlation.Condition, timeout time.Duration) (*wire.WaitQuery, error) {
	final, events, quiet := until.Parts()
	if final == 0 && events == 0 && quiet == 0 {
		return nil, fmt.Errorf("eventbus: wait %s: no condition", id)
	}
	return &wire.WaitQuery{CorrelationId: id, FinalPublishers: uint32(final), Events: uint32(events),
		QuietNs: int64(quiet), TimeoutNs: int64(timeout)}, nil
}
