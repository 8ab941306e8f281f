package broker

import (
	"context"
	"fmt"
	"net"
)

// InProcessConn returns a connection to b within the process, through an
// in-memory pipe instead of a socket, for the client library's
// eventbus.InProcess option (the way nats.go's InProcessServer takes a
// nats-server). A client on it behaves as a socket client does; it is
// the agent, whatever the policy, its identity is the broker's own
// process, and it counts against no connection limit. Once the
// broker stops, it fails with an error wrapping ErrBrokerClosed and
// net.ErrClosed.
func (b *Broker) InProcessConn(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	closed := fmt.Errorf("%w (%w)", ErrBrokerClosed, net.ErrClosed)
	clientEnd, brokerEnd := net.Pipe()
	c := newConn(b, brokerEnd, inProcessPeer(), true)
	if _, err := b.addConn(c); err != nil { // in process: never evicts
		clientEnd.Close()
		brokerEnd.Close()
		return nil, closed
	}
	if !b.goFunc(c.serve) {
		c.closeWith(CloseBrokerShutdown, nil)
		clientEnd.Close()
		return nil, closed
	}
	return clientEnd, nil
}
