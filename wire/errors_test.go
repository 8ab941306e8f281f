package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// sentinels lists every sentinel with the code it stands for.
var sentinels = []struct {
	err  Sentinel
	code ErrorCode
}{
	{ErrMalformedFrame, ErrorCode_ERROR_CODE_MALFORMED_FRAME},
	{ErrUnsupportedVersion, ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION},
	{ErrBadMagic, ErrorCode_ERROR_CODE_BAD_MAGIC},
	{ErrFrameTooLarge, ErrorCode_ERROR_CODE_FRAME_TOO_LARGE},
	{ErrMessageTooLarge, ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE},
	{ErrInvalidTopic, ErrorCode_ERROR_CODE_INVALID_TOPIC},
	{ErrInvalidPattern, ErrorCode_ERROR_CODE_INVALID_PATTERN},
	{ErrReservedTopic, ErrorCode_ERROR_CODE_RESERVED_TOPIC},
	{ErrForbidden, ErrorCode_ERROR_CODE_FORBIDDEN},
	{ErrTooManyConnections, ErrorCode_ERROR_CODE_TOO_MANY_CONNECTIONS},
	{ErrTooManySubs, ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS},
	{ErrUnknownSubscription, ErrorCode_ERROR_CODE_UNKNOWN_SUBSCRIPTION},
	{ErrSlowConsumer, ErrorCode_ERROR_CODE_SLOW_CONSUMER},
	{ErrHandshakeTimeout, ErrorCode_ERROR_CODE_HANDSHAKE_TIMEOUT},
	{ErrShuttingDown, ErrorCode_ERROR_CODE_SHUTTING_DOWN},
	{ErrUnexpectedFrame, ErrorCode_ERROR_CODE_UNEXPECTED_FRAME},
	{ErrInvalidCorrelation, ErrorCode_ERROR_CODE_INVALID_CORRELATION},
	{ErrNoResponders, ErrorCode_ERROR_CODE_NO_RESPONDERS},
	{ErrRequestTimeout, ErrorCode_ERROR_CODE_REQUEST_TIMEOUT},
	{ErrTooManyRequests, ErrorCode_ERROR_CODE_TOO_MANY_REQUESTS},
}

func TestErrorIsMatchesByCode(t *testing.T) {
	for _, s := range sentinels {
		for _, other := range sentinels {
			err := Errorf(s.code, "something about %s", "x")
			want := s.code == other.code
			if got := errors.Is(err, other.err); got != want {
				t.Errorf("errors.Is(Errorf(%v), sentinel %v) = %v; want %v", s.code, other.code, got, want)
			}
			wrapped := fmt.Errorf("eventbus: publish a.b: %w", err)
			if got := errors.Is(wrapped, other.err); got != want {
				t.Errorf("errors.Is(wrapped Errorf(%v), sentinel %v) = %v; want %v", s.code, other.code, got, want)
			}
		}
		if ErrorCode(s.err) != s.code {
			t.Errorf("sentinel for %v has code %v", s.code, ErrorCode(s.err))
		}
		if got := AsError(s.err); got.Code != s.code || got.Message != CodeName(s.code) {
			t.Errorf("AsError(sentinel %v) = %#v; want its code and name", s.code, got)
		}
	}
}

func TestErrorIsOtherTargets(t *testing.T) {
	err := Errorf(ErrorCode_ERROR_CODE_INVALID_TOPIC, "bad topic")
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"sentinel is itself", ErrInvalidTopic, ErrInvalidTopic, true},
		{"fields beyond code ignored", &Error{Code: ErrorCode_ERROR_CODE_INVALID_TOPIC, Message: "m", Topic: "t", Fatal: true}, ErrInvalidTopic, true},
		{"specific error is not a target", ErrInvalidTopic, err, false},
		{"same code, both specific", Errorf(ErrorCode_ERROR_CODE_INVALID_TOPIC, "other"), err, false},
		{"an *Error is not a target for its code", Errorf(ErrorCode_ERROR_CODE_INVALID_TOPIC, "other"), &Error{Code: ErrorCode_ERROR_CODE_INVALID_TOPIC}, false},
		{"not an *Error", err, io.EOF, false},
		{"plain error vs sentinel", io.EOF, ErrInvalidTopic, false},
		{"internal has no sentinel", Errorf(ErrorCode_ERROR_CODE_INTERNAL, "x"), ErrMalformedFrame, false},
		{"internal matches the internal code", Errorf(ErrorCode_ERROR_CODE_INTERNAL, "x"), Sentinel(ErrorCode_ERROR_CODE_INTERNAL), true},
	}
	for _, tt := range tests {
		if got := errors.Is(tt.err, tt.target); got != tt.want {
			t.Errorf("%s: errors.Is(%v, %v) = %v; want %v", tt.name, tt.err, tt.target, got, tt.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrMessageTooLarge, "message too large"},
		{ErrBadMagic, "bad magic"},
		{&Error{}, "unspecified"},
		{Errorf(ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE, "message too large: %d bytes, limit %d", 2000, 1000),
			"message too large: 2000 bytes, limit 1000"},
		{&Error{Code: ErrorCode_ERROR_CODE_FORBIDDEN, Message: "no", Topic: "a.b", Fatal: true}, "no"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("(%#v).Error() = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrorProtoRoundTrip(t *testing.T) {
	tests := []*Error{
		{Code: ErrorCode_ERROR_CODE_RESERVED_TOPIC, Message: "topic \"$sys.x\" is reserved", Topic: "$sys.x"},
		{Code: ErrorCode_ERROR_CODE_SLOW_CONSUMER, Message: "slow consumer", Fatal: true},
		{Code: ErrorCode_ERROR_CODE_UNSPECIFIED},
		{Code: ErrorCode(99), Message: "from a newer broker"},
	}
	for _, e := range tests {
		f := e.ToProto(7, 3)
		want := &ErrorFrame{RequestId: 7, Code: e.Code, Message: e.Message, Topic: e.Topic, PublishSeq: 3, Fatal: e.Fatal}
		if !proto.Equal(f, want) {
			t.Errorf("(%#v).ToProto(7, 3) = %v; want %v", e, f, want)
		}
		// Through the wire and back.
		var decoded ErrorFrame
		if err := decoded.UnmarshalVT(mustMarshal(t, f)); err != nil {
			t.Fatalf("ErrorFrame.UnmarshalVT error = %v", err)
		}
		got := FromProto(&decoded)
		if *got != *e {
			t.Errorf("FromProto(ToProto(%#v)) = %#v", e, got)
		}
		if e.Code != ErrorCode_ERROR_CODE_UNSPECIFIED && !errors.Is(got, Sentinel(e.Code)) {
			t.Errorf("errors.Is(FromProto(...), code %v) = false; want true", e.Code)
		}
	}
}

func TestCodeName(t *testing.T) {
	tests := []struct {
		code ErrorCode
		want string
	}{
		{ErrorCode_ERROR_CODE_UNSPECIFIED, "unspecified"},
		{ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed frame"},
		{ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE, "message too large"},
		{ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS, "too many subscriptions"},
		{ErrorCode_ERROR_CODE_INTERNAL, "internal"},
		{ErrorCode(99), "99"},
	}
	for _, tt := range tests {
		if got := CodeName(tt.code); got != tt.want {
			t.Errorf("CodeName(%d) = %q; want %q", tt.code, got, tt.want)
		}
	}
	for num, name := range ErrorCode_name {
		got := CodeName(ErrorCode(num))
		want := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "ERROR_CODE_"), "_", " "))
		if got != want || got == "" {
			t.Errorf("CodeName(%s) = %q; want %q", name, got, want)
		}
	}
}

// TestEveryCodeHasSentinel keeps the sentinel list in step with the enum:
// every code a peer can receive, except UNSPECIFIED and INTERNAL, has one.
func TestEveryCodeHasSentinel(t *testing.T) {
	have := make(map[ErrorCode]bool)
	for _, s := range sentinels {
		have[s.code] = true
	}
	for num, name := range ErrorCode_name {
		c := ErrorCode(num)
		if c == ErrorCode_ERROR_CODE_UNSPECIFIED || c == ErrorCode_ERROR_CODE_INTERNAL {
			continue
		}
		if !have[c] {
			t.Errorf("no sentinel for %s", name)
		}
	}
}

func TestAsErrorCopies(t *testing.T) {
	orig := Errorf(ErrorCode_ERROR_CODE_FORBIDDEN, "denied")
	cp := AsError(fmt.Errorf("wrapped: %w", orig))
	cp.Topic, cp.Fatal = "a.b", true
	if orig.Topic != "" || orig.Fatal {
		t.Errorf("AsError returned the original: it became %#v", orig)
	}
	if got := AsError(io.EOF); got.Code != ErrorCode_ERROR_CODE_INTERNAL || got.Message != io.EOF.Error() {
		t.Errorf("AsError(io.EOF) = %#v; want an internal error with its text", got)
	}
}
