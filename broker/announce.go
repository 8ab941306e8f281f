package broker

import (
	"os"
	"sync"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/wire"
)

// internalPublisher routes the messages the broker publishes itself
// (registry changes, health transitions), as the component "broker" with
// the broker's own pid and uid, so subscribers can tell them from a
// peer's: no peer may claim that component unless the policy defines it.
type internalPublisher struct {
	mu     sync.Mutex
	from   *conn  // routing scratch only: it has no socket
	fields []byte // the broker's publisher fields
}

// publishInternal routes topicName and payload to their subscribers.
func (b *Broker) publishInternal(topicName string, payload []byte) {
	now := time.Now().UnixNano()
	head, err := (&wire.Envelope{Topic: topicName, Payload: payload, PublishedAt: now}).MarshalVT()
	if err != nil {
		return
	}
	ip := &b.internal
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if ip.from == nil {
		ip.from = &conn{b: b}
		ip.fields = wire.AppendPublisherFields(nil, int32(os.Getpid()), uint32(os.Geteuid()), acl.BrokerComponent, 0)
	}
	d := wire.Delivery{Head: head, ReceivedAt: now, Publisher: ip.fields}
	b.route(ip.from, &d, []byte(topicName), nil, nil, nil)
	for i, sc := range ip.from.toWake {
		sc.out.signal()
		ip.from.toWake[i] = nil
	}
	ip.from.toWake = ip.from.toWake[:0]
}
