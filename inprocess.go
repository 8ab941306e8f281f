package eventbus

import (
	"context"
	"net"
)

// Client returns a client connected to b within the process, through an
// in-memory pipe instead of a socket. It behaves as a socket client does;
// its identity is the broker's own process, and it does not count against
// max_connections. If its connection is closed (a slow-consumer
// disconnect, say) it reconnects; once the broker stops, its operations
// fail with ErrBrokerClosed.
func (b *Broker) Client(ctx context.Context, opts ...ClientOption) (*Client, error) {
	o := defaultClientOptions()
	for _, opt := range opts {
		opt(&o)
	}
	o.dial = b.dialInProcess
	return newClient(ctx, "in-process", o)
}

func (b *Broker) dialInProcess(ctx context.Context) (net.Conn, error) {
	clientEnd, brokerEnd := net.Pipe()
	c := newConn(b, brokerEnd, inProcessPeer(), true)
	if err := b.addConn(c); err != nil {
		clientEnd.Close()
		brokerEnd.Close()
		return nil, ErrBrokerClosed
	}
	if !b.goFunc(c.serve) {
		c.closeWith(CloseBrokerShutdown, nil)
		clientEnd.Close()
		return nil, ErrBrokerClosed
	}
	return clientEnd, nil
}
