package eventbus

import (
	"maps"
	"sync"
	"time"

	"daemoneye.dev/eventbus/correlation"
)

// Message is one delivered message.
type Message struct {
	Topic   string
	Payload []byte
	// PublishedAt is the publisher's clock when it published.
	PublishedAt time.Time
	// ReceivedAt is the broker's clock when it received the message.
	ReceivedAt time.Time
	// Publisher identity as the broker's kernel reported it, not as the
	// publisher claimed.
	PublisherPID       int
	PublisherUID       uint32
	PublisherComponent string
	// Final marks the publisher's last result for the message's
	// correlation (see Correlation).
	Final bool
	// Sequence numbers the message within its publisher's session
	// (PublisherSession, random per client): consecutive publishes of one
	// client are consecutive numbers, and a publish resent after a
	// reconnect keeps its number. 0 for a publisher that sent none.
	Sequence         uint64
	PublisherSession uint64
	// Missed is how many messages for this subscription were dropped just
	// before this one, by the broker (its queue for this subscriber was
	// full) or by this client (the subscription's channel was full).
	Missed uint64

	// RequestID is the requester's id when the message is a request
	// (Client.Request); 0 otherwise. Deadline is the requester's, if any.
	RequestID uint64
	Deadline  time.Time

	// A request's reply token, for a responder subscription, and the
	// connection it arrived on (Reply).
	replyToken uint64
	client     *Client
	conn       *clientConn

	// The correlation metadata but the sequence number, shared by the
	// messages that repeat it and never handed out; nil: none.
	corrBase *correlation.Metadata
	corrSeq  uint64
	corrOnce sync.Once
	meta     *correlation.Metadata
}

// Correlation returns the message's correlation metadata, or nil if it
// has none. The first call builds it (a subscriber that never looks pays
// nothing) and later calls return the same value, which the caller may
// modify. Safe for concurrent use.
func (m *Message) Correlation() *correlation.Metadata {
	if m.corrBase != nil {
		m.corrOnce.Do(m.buildCorrelation)
	}
	return m.meta
}

func (m *Message) buildCorrelation() {
	meta := *m.corrBase
	meta.Sequence = m.corrSeq
	meta.Tags = maps.Clone(m.corrBase.Tags)
	m.meta = &meta
}
