package broker

import (
	"context"
	"errors"
	"slices"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

// Limits on queries over the socket (PROTOCOL.md §5.8).
const (
	defaultHistoryLimit = 1000
	maxHistoryLimit     = 100000
	maxQueryResultBytes = 16 << 20
	maxWaitsPerConn     = 16
)

// handleQuery answers a QUERY frame. Results hold only what the asker may
// subscribe to, so the history never leaks a restricted topic.
func (c *conn) handleQuery(body []byte) error {
	var q wire.Query
	if err := q.UnmarshalVT(body); err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed QUERY: %v", err)
	}
	if err := wire.CheckUTF8(&q); err != nil {
		return err
	}
	res := &wire.QueryResult{RequestId: q.RequestId}
	t := c.b.tracker
	switch k := q.Kind.(type) {
	case *wire.Query_History:
		res.Events, res.Truncated = c.visibleEvents(c.b.history(k.History), historyLimit(k.History.Limit))
	case *wire.Query_Timeline:
		for _, e := range t.Timeline(k.Timeline) {
			if c.mayRead(e.Topic) {
				res.Timeline = append(res.Timeline, wireconv.TimelineToWire(&e))
			}
		}
	case *wire.Query_Workflow:
		if err := c.mayReadWorkflows(); err != nil {
			c.reply(q.RequestId, err)
			return nil
		}
		if w, ok := t.Workflow(k.Workflow); ok {
			res.Workflow, res.Found = wireconv.WorkflowToWire(&w), true
		}
	case *wire.Query_Workflows:
		if err := c.mayReadWorkflows(); err != nil {
			c.reply(q.RequestId, err)
			return nil
		}
		for _, w := range t.Workflows() {
			res.Workflows = append(res.Workflows, wireconv.SummaryToWire(&w))
		}
	case *wire.Query_Wait:
		c.startWait(q.RequestId, k.Wait)
		return nil
	default:
		c.reply(q.RequestId, wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "QUERY of no known kind"))
		return nil
	}
	c.out.control(wire.TypeQueryResult, res)
	return nil
}

func (c *conn) mayRead(topicName string) bool {
	return c.access.Check(acl.Subscribe, topicName) == nil
}

// mayReadWorkflows: workflow state names processes and stages across
// topics, so it is for registered components and the agent.
func (c *conn) mayReadWorkflows() error {
	if c.identity.Registered {
		return nil
	}
	return wire.Errorf(wire.ErrorCode_ERROR_CODE_FORBIDDEN, "workflow state is for registered components: claim one at hello")
}

// history runs a history query on the tracker through its most selective
// index, then applies the other criteria.
func (b *Broker) history(q *wire.HistoryQuery) []correlation.Event {
	t := b.tracker
	var bounds correlation.Query
	if q.Since != 0 {
		bounds.Since = time.Unix(0, q.Since)
	}
	if q.Until != 0 {
		bounds.Until = time.Unix(0, q.Until)
	}
	var evs []correlation.Event
	switch {
	case len(q.Tags) > 0:
		evs = t.ByTags(q.Tags, bounds)
	case q.CorrelationId != "":
		evs = t.ByCorrelation(q.CorrelationId)
	case q.RootId != "":
		evs = t.ByRoot(q.RootId)
	case q.Stage != "":
		evs = t.ByStage(q.Stage)
	default:
		evs = t.InRange(bounds.Since, bounds.Until)
	}
	evs = slices.DeleteFunc(evs, func(e correlation.Event) bool {
		m := &e.Metadata
		return (q.CorrelationId != "" && m.CorrelationID != q.CorrelationId) ||
			(q.RootId != "" && m.RootID != q.RootId) ||
			(q.Stage != "" && m.Stage != q.Stage) ||
			(!bounds.Since.IsZero() && e.ReceivedAt.Before(bounds.Since)) ||
			(!bounds.Until.IsZero() && !e.ReceivedAt.Before(bounds.Until))
	})
	return evs
}

func historyLimit(limit uint32) int {
	if limit == 0 {
		return defaultHistoryLimit
	}
	return min(int(limit), maxHistoryLimit)
}

// visibleEvents converts the events the asker may read, keeping the limit
// most recent of them that fit in one frame; the limit counts only what
// the asker sees.
func (c *conn) visibleEvents(evs []correlation.Event, limit int) (out []*wire.Envelope, truncated bool) {
	size := 0
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
		if !c.mayRead(evs[i].Topic) {
			continue
		}
		env := wireconv.EventToWire(&evs[i])
		if size += env.SizeVT() + 8; size > maxQueryResultBytes {
			truncated = true
			break
		}
		out = append(out, env)
	}
	slices.Reverse(out)
	return out, truncated
}

// startWait runs a wait on a goroutine the broker owns; it ends when the
// condition holds, the timeout passes or the connection closes.
func (c *conn) startWait(requestID uint64, w *wire.WaitQuery) {
	cond, timeout, err := waitTerms(w)
	if err != nil {
		c.reply(requestID, err)
		return
	}
	if c.waits.Add(1) > maxWaitsPerConn {
		c.waits.Add(-1)
		c.reply(requestID, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "too many waits in progress on this connection: limit %d", maxWaitsPerConn))
		return
	}
	started := c.b.goFunc(func() {
		defer c.waits.Add(-1)
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		defer cancel()
		evs, err := c.b.tracker.Wait(ctx, w.CorrelationId, cond)
		var unmet *correlation.WaitError
		if err != nil && !errors.As(err, &unmet) {
			c.reply(requestID, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err))
			return
		}
		res := &wire.QueryResult{RequestId: requestID}
		res.Events, res.Truncated = c.visibleEvents(evs, maxHistoryLimit)
		if err != nil {
			res.WaitUnmet = err.Error()
		}
		c.out.control(wire.TypeQueryResult, res)
	})
	if !started {
		c.waits.Add(-1)
		c.reply(requestID, wire.ErrShuttingDown)
	}
}

// waitTerms reads a WaitQuery's condition, which must be exactly one.
func waitTerms(w *wire.WaitQuery) (correlation.Condition, time.Duration, error) {
	var conds []correlation.Condition
	if w.FinalPublishers > 0 {
		conds = append(conds, correlation.FinalPublishers(int(w.FinalPublishers)))
	}
	if w.Events > 0 {
		conds = append(conds, correlation.EventCount(int(w.Events)))
	}
	if w.QuietNs > 0 {
		conds = append(conds, correlation.QuietFor(time.Duration(w.QuietNs)))
	}
	if len(conds) != 1 {
		return correlation.Condition{}, 0, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION,
			"wait needs exactly one condition (final publishers, events or quiet period), got %d", len(conds))
	}
	timeout := time.Duration(w.TimeoutNs)
	switch {
	case timeout < 0:
		return correlation.Condition{}, 0, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION,
			"wait timeout %v is negative", timeout)
	case timeout == 0:
		timeout = wire.DefaultWaitTimeout
	case timeout > wire.MaxWaitTimeout:
		return correlation.Condition{}, 0, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION,
			"wait timeout %v exceeds the limit %v", timeout, wire.MaxWaitTimeout)
	}
	return conds[0], timeout, nil
}
