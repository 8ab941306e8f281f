package broker

import "errors"

// ErrBrokerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close, and by InProcessConn once the broker has stopped; it wraps
// net.ErrClosed there, so an in-process client stops reconnecting.
var ErrBrokerClosed = errors.New("broker: closed")

// CloseReason says why the broker closed a connection; it is recorded in
// stats and logs.
type CloseReason uint8

// Close reasons.
const (
	// CloseNone: the connection is open.
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
	// CloseEvicted: every slot was taken and a newer connection took this
	// one's, which was still in its handshake.
	CloseEvicted
	// CloseIdle: the connection did nothing for idle_timeout.
	CloseIdle
	// CloseExpired: a registered collector sent no heartbeat for
	// heartbeat_expire_after intervals.
	CloseExpired
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{
	"none", "client closed", "protocol error", "slow consumer", "handshake failed",
	"too many connections", "write error", "broker shutdown", "evicted in handshake", "idle",
	"expired",
}

// String returns the reason as the logs spell it.
func (r CloseReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return "unknown"
}
