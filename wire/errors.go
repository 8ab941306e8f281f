package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Error is an error the protocol carries: one the broker sent, or one this
// package found in what a peer sent. errors.Is matches it against the
// Sentinel of its code. Its text is the message alone: whoever returns it
// adds the package and the operation.
type Error struct {
	Code    ErrorCode
	Message string
	// Topic of a refused publish, if any.
	Topic string
	// Fatal reports that the sender closes the connection after it.
	Fatal bool
}

// Errorf returns an *Error with a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the message.
func (e *Error) Error() string {
	if e.Message == "" {
		return CodeName(e.Code)
	}
	return e.Message
}

// Is reports whether target is the Sentinel of e's code.
func (e *Error) Is(target error) bool {
	s, ok := target.(Sentinel)
	return ok && ErrorCode(s) == e.Code
}

// Sentinel is an error code as a constant error, for errors.Is: every
// *Error of the code matches it, on either side of the socket. Being a
// constant, no one can change what it matches.
type Sentinel ErrorCode

// Error returns the name of the code.
func (s Sentinel) Error() string { return CodeName(ErrorCode(s)) }

// Sentinels for errors.Is, one per code a caller may want to act on.
const (
	ErrMalformedFrame      = Sentinel(ErrorCode_ERROR_CODE_MALFORMED_FRAME)
	ErrUnsupportedVersion  = Sentinel(ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION)
	ErrBadMagic            = Sentinel(ErrorCode_ERROR_CODE_BAD_MAGIC)
	ErrFrameTooLarge       = Sentinel(ErrorCode_ERROR_CODE_FRAME_TOO_LARGE)
	ErrMessageTooLarge     = Sentinel(ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE)
	ErrInvalidTopic        = Sentinel(ErrorCode_ERROR_CODE_INVALID_TOPIC)
	ErrInvalidPattern      = Sentinel(ErrorCode_ERROR_CODE_INVALID_PATTERN)
	ErrReservedTopic       = Sentinel(ErrorCode_ERROR_CODE_RESERVED_TOPIC)
	ErrForbidden           = Sentinel(ErrorCode_ERROR_CODE_FORBIDDEN)
	ErrTooManyConnections  = Sentinel(ErrorCode_ERROR_CODE_TOO_MANY_CONNECTIONS)
	ErrTooManySubs         = Sentinel(ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS)
	ErrUnknownSubscription = Sentinel(ErrorCode_ERROR_CODE_UNKNOWN_SUBSCRIPTION)
	ErrSlowConsumer        = Sentinel(ErrorCode_ERROR_CODE_SLOW_CONSUMER)
	ErrHandshakeTimeout    = Sentinel(ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT)
	ErrShuttingDown        = Sentinel(ErrorCode_ERROR_CODE_SHUTTING_DOWN)
	ErrUnexpectedFrame     = Sentinel(ErrorCode_ERROR_CODE_UNEXPECTED_FRAME)
	ErrInvalidCorrelation  = Sentinel(ErrorCode_ERROR_CODE_INVALID_CORRELATION)
	ErrNoResponders        = Sentinel(ErrorCode_ERROR_CODE_NO_RESPONDERS)
	ErrRequestTimeout      = Sentinel(ErrorCode_ERROR_CODE_REQUEST_TIMEOUT)
	ErrTooManyRequests     = Sentinel(ErrorCode_ERROR_CODE_TOO_MANY_REQUESTS)
)

// AsError returns err as a new *Error for sending, which the caller may
// modify: a copy of an *Error err wraps, a Sentinel's code, or else the
// text of err with the internal-error code.
func AsError(err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		cp := *we
		return &cp
	}
	var s Sentinel
	if errors.As(err, &s) {
		return &Error{Code: ErrorCode(s), Message: s.Error()}
	}
	return &Error{Code: ErrorCode_ERROR_CODE_INTERNAL, Message: err.Error()}
}

// CodeName is the code's short lower-case name, e.g. "message too large".
func CodeName(c ErrorCode) string {
	s := strings.TrimPrefix(c.String(), "ERROR_CODE_")
	return strings.ToLower(strings.ReplaceAll(s, "_", " "))
}

// ToProto converts e for sending.
func (e *Error) ToProto(requestID, publishSeq uint64) *ErrorFrame {
	return &ErrorFrame{RequestId: requestID, Code: e.Code, Message: e.Message, Topic: e.Topic, PublishSeq: publishSeq, Fatal: e.Fatal}
}

// FromProto converts a received ERROR frame.
func FromProto(f *ErrorFrame) *Error {
	return &Error{Code: f.Code, Message: f.Message, Topic: f.Topic, Fatal: f.Fatal}
}
