package broker

import (
	"context"
	"errors"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

// Limits on queries over the socket (PROTOCOL.md §5.8); the bytes one
// query or wait may hold are max_query_bytes, and the waits in progress
// max_waits and max_waits_per_uid (docs/SECURITY.md §7).
const (
	defaultHistoryLimit = 1000
	maxHistoryLimit     = 100000
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
		credit, err := c.reserveQueryMemory(c.queryCost())
		if err != nil {
			c.reply(q.RequestId, err)
			return nil
		}
		res.Events, res.Truncated = c.history(k.History)
		c.sendReplyHolding(res, credit)
		return nil
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
	case *wire.Query_Registry:
		if err := c.mayReadWorkflows(); err != nil {
			c.reply(q.RequestId, err)
			return nil
		}
		res.Collectors = c.b.collectors()
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
	c.sendReply(res.RequestId, wire.TypeQueryResult, res)
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

// history answers a history query from the tracker, bounded in events
// and bytes, with only what the asker may read: nothing else is copied.
func (c *conn) history(q *wire.HistoryQuery) ([]*wire.Envelope, bool) {
	sel := correlation.Selection{Tags: q.Tags, CorrelationID: q.CorrelationId, RootID: q.RootId, Stage: q.Stage,
		Limit: historyLimit(q.Limit), MaxBytes: int64(c.b.cfg.MaxQueryBytes), Visible: c.mayRead}
	if q.Since != 0 {
		sel.Since = time.Unix(0, q.Since)
	}
	if q.Until != 0 {
		sel.Until = time.Unix(0, q.Until)
	}
	evs, truncated := c.b.tracker.Select(sel)
	if truncated {
		c.b.limits.hit(limitQueryBytes)
	}
	return eventsToWire(evs), truncated
}

func historyLimit(limit uint32) int {
	if limit == 0 {
		return defaultHistoryLimit
	}
	return min(int(limit), maxHistoryLimit)
}

func eventsToWire(evs []correlation.Event) []*wire.Envelope {
	out := make([]*wire.Envelope, len(evs))
	for i := range evs {
		out[i] = wireconv.EventToWire(&evs[i])
	}
	return out
}

// startWait runs a wait on a goroutine the broker owns; it ends when the
// condition holds, the timeout passes or the connection closes.
func (c *conn) startWait(requestID uint64, w *wire.WaitQuery) {
	cond, timeout, err := waitTerms(w)
	if err != nil {
		c.reply(requestID, err)
		return
	}
	if err := c.b.startWaitSlot(c); err != nil {
		c.reply(requestID, err)
		return
	}
	credit, err := c.reserveQueryMemory(c.queryCost())
	if err != nil {
		c.b.endWaitSlot(c)
		c.reply(requestID, err)
		return
	}
	started := c.b.goFunc(func() {
		defer c.b.endWaitSlot(c)
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		defer cancel()
		evs, truncated, err := c.b.tracker.WaitWith(ctx, w.CorrelationId, cond,
			correlation.WaitOptions{MaxBytes: int64(c.b.cfg.MaxQueryBytes), Visible: c.mayRead})
		var unmet *correlation.WaitError
		if err != nil && !errors.As(err, &unmet) {
			c.releaseQueryMemory(credit)
			c.reply(requestID, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err))
			return
		}
		if truncated {
			c.b.limits.hit(limitQueryBytes)
		}
		res := &wire.QueryResult{RequestId: requestID, Events: eventsToWire(evs), Truncated: truncated}
		if err != nil {
			res.WaitUnmet = err.Error()
		}
		c.sendReplyHolding(res, credit)
	})
	if !started {
		c.releaseQueryMemory(credit)
		c.b.endWaitSlot(c)
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

// queryCost is what a query or wait counts against max_query_memory: its
// events, up to max_query_bytes, and their encoded answer.
func (c *conn) queryCost() int64 { return 2 * int64(c.b.cfg.MaxQueryBytes) }
