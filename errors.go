package eventbus

import (
	"errors"

	"daemoneye.dev/eventbus/wire"
)

// Errors returned by the broker and client. Errors the broker sends over
// the wire are *wire.Error values; match them with the wire sentinels
// re-exported here, e.g. errors.Is(err, eventbus.ErrMessageTooLarge).
var (
	ErrBrokerClosed = errors.New("eventbus: broker closed")
	ErrClientClosed = errors.New("eventbus: client closed")
	// ErrDisconnected: the client has no connection right now and is
	// reconnecting; the operation was not performed.
	ErrDisconnected = errors.New("eventbus: not connected to the broker")
	// ErrPublishLost: publishes were buffered when the connection failed and
	// may not have reached the broker.
	ErrPublishLost = errors.New("eventbus: publishes lost with the connection")

	ErrMessageTooLarge      = wire.ErrMessageTooLarge
	ErrInvalidTopic         = wire.ErrInvalidTopic
	ErrInvalidPattern       = wire.ErrInvalidPattern
	ErrReservedTopic        = wire.ErrReservedTopic
	ErrForbidden            = wire.ErrForbidden
	ErrTooManyConnections   = wire.ErrTooManyConnections
	ErrTooManySubscriptions = wire.ErrTooManySubs
	ErrSlowConsumer         = wire.ErrSlowConsumer
	ErrShuttingDown         = wire.ErrShuttingDown
	ErrUnsupportedVersion   = wire.ErrUnsupportedVersion
)

// CloseReason says why the broker closed a connection; it is recorded in
// stats and logs.
type CloseReason uint8

const (
	CloseNone CloseReason = iota
	// CloseClientClosed: the client hung up.
	CloseClientClosed
	// CloseProtocolError: the client sent something the protocol forbids.
	CloseProtocolError
	// CloseSlowConsumer: the queue was full under the disconnect policy.
	CloseSlowConsumer
	// CloseHandshakeFailed: no valid preamble and hello in time.
	CloseHandshakeFailed
	// CloseTooManyConnections: max_connections was reached at accept.
	CloseTooManyConnections
	// CloseWriteError: writing to the client failed.
	CloseWriteError
	// CloseBrokerShutdown: the broker is shutting down.
	CloseBrokerShutdown
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{
	"none", "client closed", "protocol error", "slow consumer", "handshake failed",
	"too many connections", "write error", "broker shutdown",
}

func (r CloseReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return "unknown"
}
