package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"daemoneye.dev/eventbus/wire"
)

// Requests and replies (docs/PROTOCOL.md §5.9). A request is a publish
// that wants one reply. The broker gives it, with a reply token, to the
// responder subscriptions it matches (one member per queue group), and
// routes the first reply to this client's own connection: no topic
// carries it, so no other subscriber can read it.

// ReplyError is a responder's typed failure, returned by Request.
type ReplyError struct {
	Code     string // short, machine-readable, e.g. "not_found"
	Message  string
	Category string // e.g. "client", "server", "unavailable"
}

// Error formats the failure with its code and category.
func (e *ReplyError) Error() string {
	return fmt.Sprintf("eventbus: reply error %s (%s): %s", e.Code, e.Category, e.Message)
}

// Request publishes payload on topicName as a request and waits for its
// reply, until ctx ends; the deadline travels with the request, and the
// broker forgets it then. It returns the reply as a Message (Payload, and
// the responder's verified identity as the publisher's), or:
//   - an error matching ErrNoResponders at once when no responder
//     subscription can receive it;
//   - ctx's error at its deadline;
//   - ErrRequestTimeout when every responder that had it went away;
//   - a *ReplyError when the responder answered with one.
//
// A request is never resent after a reconnect: Request then fails with
// ErrDisconnected.
func (c *Client) Request(ctx context.Context, topicName string, payload []byte, opts ...PublishOption) (*Message, error) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	r := &request{ch: make(chan response, 1)}
	if err := c.publish(ctx, topicName, payload, opts, id, r); err != nil {
		return nil, fmt.Errorf("eventbus: request %s: %w", topicName, unwrapPublish(err))
	}
	select {
	case resp := <-r.ch:
		if errors.Is(resp.err, ErrRequestTimeout) && ctx.Err() != nil {
			// The broker's deadline and ctx's passed together: ctx's wins.
			return nil, fmt.Errorf("eventbus: request %s: %w", topicName, ctx.Err())
		}
		if resp.err != nil {
			return nil, fmt.Errorf("eventbus: request %s: %w", topicName, resp.err)
		}
		res, ok := resp.reply.(*wire.Response)
		if !ok {
			return nil, fmt.Errorf("eventbus: request %s: broker answered with %T", topicName, resp.reply)
		}
		if e := res.Error; e != nil {
			return nil, &ReplyError{Code: e.Code, Message: e.Message, Category: e.Category}
		}
		return &Message{Topic: topicName, Payload: res.Payload, ReceivedAt: time.Now(), PublisherPID: int(res.ResponderPid),
			PublisherUID: res.ResponderUid, PublisherComponent: res.ResponderComponent}, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.requests, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("eventbus: request %s: %w", topicName, ctx.Err())
	}
}

// unwrapPublish strips publish's "eventbus: publish TOPIC: " prefix.
func unwrapPublish(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}

// CanReply reports whether m is a request this subscription may answer:
// it subscribed as a responder (SubscribeOptions.Responder).
func (m *Message) CanReply() bool { return m.replyToken != 0 }

// Reply answers the request m with payload. It fails with ErrDisconnected
// if the connection m arrived on is gone: the broker has then given the
// request to another member of the queue group, or failed it.
func (m *Message) Reply(ctx context.Context, payload []byte) error {
	return m.reply(ctx, &wire.Reply{ReplyToken: m.replyToken, Payload: payload})
}

// ReplyWithError answers the request m with a typed failure, which the
// requester's Request returns as a *ReplyError.
func (m *Message) ReplyWithError(ctx context.Context, e *ReplyError) error {
	return m.reply(ctx, &wire.Reply{ReplyToken: m.replyToken, Error: &wire.ReplyError{Code: e.Code, Message: e.Message, Category: e.Category}})
}

func (m *Message) reply(ctx context.Context, r *wire.Reply) error {
	if m.replyToken == 0 {
		return fmt.Errorf("eventbus: reply: message on %s is not a request this subscription may answer", m.Topic)
	}
	c := m.client
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != m.conn && c.usableLocked() == nil {
		return fmt.Errorf("eventbus: reply: %w: the request arrived on an earlier connection", ErrDisconnected)
	}
	if err := c.enqueueLocked(ctx, wire.TypeReply, r, true); err != nil {
		return fmt.Errorf("eventbus: reply: %w", err)
	}
	return nil
}
