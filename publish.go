package eventbus

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/topic"
	"daemoneye.dev/eventbus/wire"
)

// PublishOption adds to one publish: WithCorrelation, WithFinal, Confirm.
// A plain value, so that publishing with options does not allocate.
type PublishOption struct {
	corr    *publishCorrelation
	final   bool
	confirm bool
	to      string
}

// publishCorrelation is metadata validated and encoded once, by
// WithCorrelation, for every publish that uses the option.
type publishCorrelation struct {
	id   string // for the client's Sequencer
	base []byte // wire.AppendCorrelationBase
	err  error  // why the metadata is invalid
}

// WithCorrelation publishes with correlation metadata (package
// correlation). The
// client sets Sequence, numbering its own messages within m's correlation
// so a subscriber sees gaps; replying with a received message's metadata
// therefore numbers the reply as this publisher's. m is validated and
// encoded here, once for every publish that uses the option, so building
// it once and reusing it is cheapest; invalid metadata fails the publish
// (limits are errors, never truncation).
func WithCorrelation(m correlation.Metadata) PublishOption {
	pc := &publishCorrelation{id: m.CorrelationID}
	if err := m.Validate(); err != nil {
		pc.err = wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err)
	} else {
		pc.base = wire.AppendCorrelationBase(nil, wireconv.MetadataToWire(&m))
	}
	return PublishOption{corr: pc}
}

// WithFinal marks the message as this publisher's last result for its
// correlation, for the broker's wait-for-results (correlation.FinalPublishers).
func WithFinal() PublishOption { return PublishOption{final: true} }

// Confirm makes Publish wait until the broker confirms the message: it
// was written to every matching subscriber or counted as dropped for it
// (docs/PROTOCOL.md §5.3.2). Publish then returns nil, a *LostError if the
// message will not be confirmed, or ctx's error: matching ErrUnconfirmed
// too if the message was taken and ctx ended during the wait for its
// confirmation (see ErrUnconfirmed). Flush confirms many messages for the
// price of one wait.
func Confirm() PublishOption { return PublishOption{confirm: true} }

// To directs a request (Request) to the responders of one component:
// responders of other components do not receive it as a request. Ignored
// by Publish.
func To(component string) PublishOption { return PublishOption{to: component} }

// Publish sends payload on topicName. It returns once the message is
// buffered, unless Confirm is given; while the buffer is full (1 MiB the
// broker has not taken) it waits, until ctx ends. The message gets the
// session's next sequence number; the broker confirms it once finished
// with it, and until then it is kept and resent after a reconnect (see
// WithResendBuffer). A refusal by the broker, or a loss, is reported by
// Flush and the error handler. Local checks (topic syntax, size, metadata)
// fail at once.
func (c *Client) Publish(ctx context.Context, topicName string, payload []byte, opts ...PublishOption) error {
	return c.publish(ctx, topicName, payload, opts, 0, nil)
}

// publish is Publish, or, with r not nil, the request requestID that r
// waits for the reply of.
func (c *Client) publish(ctx context.Context, topicName string, payload []byte, opts []PublishOption, requestID uint64, r *request) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("eventbus: publish %s: %w", topicName, err)
	}
	if err := topic.Validate(topicName); err != nil {
		return fmt.Errorf("eventbus: publish: %w", wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_TOPIC, "%v", err))
	}
	if topic.IsReserved(topicName) {
		return fmt.Errorf("eventbus: publish: %w", wire.Errorf(wire.ErrorCode_ERROR_CODE_RESERVED_TOPIC, "topic %q is reserved for the broker", topicName))
	}
	c.mu.Lock()
	if c.limits != nil && len(payload) > int(c.limits.MaxMessageSize) {
		c.mu.Unlock()
		return fmt.Errorf("eventbus: publish %s: %w", topicName, wire.Errorf(wire.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE,
			"message too large: %d bytes, limit %d", len(payload), c.limits.MaxMessageSize))
	}
	now := time.Now().UnixNano()
	direct := now-c.lastPublish > int64(directSpacing)
	c.lastPublish = now
	c.env.Topic, c.env.Payload, c.env.PublishedAt = topicName, payload, now
	var o PublishOption
	for _, opt := range opts {
		o.corr = cmp.Or(opt.corr, o.corr)
		o.final = o.final || opt.final
		o.confirm = o.confirm || opt.confirm
		o.to = cmp.Or(opt.to, o.to)
	}
	c.env.Final = o.final
	var cseq uint64
	if o.corr != nil {
		if o.corr.err != nil {
			c.env.Topic, c.env.Payload = "", nil
			c.mu.Unlock()
			return fmt.Errorf("eventbus: publish %s: %w", topicName, o.corr.err)
		}
		cseq = c.seq.Next(o.corr.id)
	}
	if r != nil {
		c.env.RequestId, c.env.Recipient = requestID, o.to
		if dl, ok := ctx.Deadline(); ok {
			c.env.RequestDeadline = dl.UnixNano()
		}
	}
	err := c.enqueuePublishLocked(ctx, o.corr, cseq, direct, r == nil)
	if err == nil && r != nil {
		c.requests[requestID] = r
	}
	c.env.Topic, c.env.Payload, c.env.Final, c.env.Sequence, c.env.RequestId, c.env.RequestDeadline, c.env.Recipient = "", nil, false, 0, 0, 0, ""
	seq := c.lastSeq
	c.mu.Unlock()
	if err == nil && o.confirm {
		err = c.waitConfirmed(ctx, seq)
	}
	if err != nil {
		return fmt.Errorf("eventbus: publish %s: %w", topicName, err)
	}
	return nil
}
