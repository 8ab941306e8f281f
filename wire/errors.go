package wire

import (
	"fmt"
	"strings"
)

// Error is an error the protocol carries: one the broker sent, or one this
// package found in what a peer sent. errors.Is matches it against the
// sentinels below by code alone.
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

func (e *Error) Error() string {
	if e.Message == "" {
		return "eventbus: " + CodeName(e.Code)
	}
	return "eventbus: " + e.Message
}

// Is reports whether target is an *Error with the same code. A sentinel
// (empty Message) therefore matches every error of its code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// Sentinels for errors.Is, one per code a caller may want to act on.
var (
	ErrMalformedFrame      = &Error{Code: ErrorCode_ERROR_CODE_MALFORMED_FRAME}
	ErrUnsupportedVersion  = &Error{Code: ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION}
	ErrBadMagic            = &Error{Code: ErrorCode_ERROR_CODE_BAD_MAGIC}
	ErrFrameTooLarge       = &Error{Code: ErrorCode_ERROR_CODE_FRAME_TOO_LARGE}
	ErrMessageTooLarge     = &Error{Code: ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE}
	ErrInvalidTopic        = &Error{Code: ErrorCode_ERROR_CODE_INVALID_TOPIC}
	ErrInvalidPattern      = &Error{Code: ErrorCode_ERROR_CODE_INVALID_PATTERN}
	ErrReservedTopic       = &Error{Code: ErrorCode_ERROR_CODE_RESERVED_TOPIC}
	ErrForbidden           = &Error{Code: ErrorCode_ERROR_CODE_FORBIDDEN}
	ErrTooManyConnections  = &Error{Code: ErrorCode_ERROR_CODE_TOO_MANY_CONNECTIONS}
	ErrTooManySubs         = &Error{Code: ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS}
	ErrUnknownSubscription = &Error{Code: ErrorCode_ERROR_CODE_UNKNOWN_SUBSCRIPTION}
	ErrSlowConsumer        = &Error{Code: ErrorCode_ERROR_CODE_SLOW_CONSUMER}
	ErrHandshakeTimeout    = &Error{Code: ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT}
	ErrShuttingDown        = &Error{Code: ErrorCode_ERROR_CODE_SHUTTING_DOWN}
	ErrUnexpectedFrame     = &Error{Code: ErrorCode_ERROR_CODE_UNEXPECTED_FRAME}
	ErrInvalidCorrelation  = &Error{Code: ErrorCode_ERROR_CODE_INVALID_CORRELATION}
)

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
