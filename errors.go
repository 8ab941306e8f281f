package eventbus

import (
	"errors"

	"daemoneye.dev/eventbus/wire"
)

// Errors of the client itself.
var (
	// ErrClientClosed: Close was called, or the connection failed with
	// reconnection off; later operations fail with it.
	ErrClientClosed = errors.New("eventbus: client closed")
	// ErrDisconnected: the client has no connection right now and is
	// reconnecting; the operation was not performed.
	ErrDisconnected = errors.New("eventbus: not connected to the broker")
	// ErrPublishLost matches a *LostError: publishes the broker had not
	// confirmed when the connection failed, and that were not resent.
	ErrPublishLost = errors.New("eventbus: publishes lost with the connection")
	// ErrUnconfirmed: ctx ended while Flush, or Publish with Confirm,
	// waited for the broker's confirmation. The publishes were taken: they
	// are still confirmed, resent or reported lost later, so publishing
	// them again makes copies subscribers cannot recognize. ctx's error is
	// wrapped too.
	ErrUnconfirmed = errors.New("not confirmed yet")
)

// Errors the broker reports, matched with errors.Is on what any call or
// the error handler returns, e.g. errors.Is(err, eventbus.ErrForbidden).
// They are the protocol's error codes (docs/PROTOCOL.md §6) and match the
// same codes found by the client itself before sending.
const (
	ErrMessageTooLarge      = wire.ErrMessageTooLarge
	ErrInvalidTopic         = wire.ErrInvalidTopic
	ErrInvalidPattern       = wire.ErrInvalidPattern
	ErrInvalidCorrelation   = wire.ErrInvalidCorrelation
	ErrReservedTopic        = wire.ErrReservedTopic
	ErrForbidden            = wire.ErrForbidden
	ErrTooManyConnections   = wire.ErrTooManyConnections
	ErrTooManySubscriptions = wire.ErrTooManySubs
	ErrSlowConsumer         = wire.ErrSlowConsumer
	ErrShuttingDown         = wire.ErrShuttingDown
	ErrUnsupportedVersion   = wire.ErrUnsupportedVersion
	ErrNoResponders         = wire.ErrNoResponders
	ErrRequestTimeout       = wire.ErrRequestTimeout
	ErrTooManyRequests      = wire.ErrTooManyRequests
)
