package eventbus

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// Client defaults.
const (
	// DefaultChannelSize is each Subscription's channel capacity unless
	// WithChannelSize says otherwise.
	DefaultChannelSize = 4096
	// DefaultMinBackoff and DefaultMaxBackoff bound the reconnect delay
	// unless WithBackoff says otherwise.
	DefaultMinBackoff = 10 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second
)

type clientOptions struct {
	name         string
	component    string
	token        []byte
	channelSize  int
	resendBuffer int
	noConfirm    bool // benchmarks only: the baseline of a HELLO without a session
	capabilities *wire.Capabilities
	reconnect    bool
	minBackoff   time.Duration
	maxBackoff   time.Duration
	onError      func(error)
	onDisconnect func(error)
	onReconnect  func()
	logger       *slog.Logger
	inProcess    InProcessConnProvider
	dialOpts     []transport.DialOption // the broker's expected identity
}

func defaultClientOptions() clientOptions {
	return clientOptions{
		name:         filepath.Base(os.Args[0]),
		channelSize:  DefaultChannelSize,
		resendBuffer: DefaultResendBuffer,
		reconnect:    true,
		minBackoff:   DefaultMinBackoff,
		maxBackoff:   DefaultMaxBackoff,
		logger:       slog.New(slog.DiscardHandler),
	}
}

// ClientOption configures Dial.
type ClientOption func(*clientOptions)

// WithName sets the name the broker shows for this client in stats and
// logs; default the program's name. It is not trusted for anything.
func WithName(name string) ClientOption { return func(o *clientOptions) { o.name = name } }

// WithComponent sets the component this client claims to be (procmond,
// agent, ...); default none.
func WithComponent(c string) ClientOption { return func(o *clientOptions) { o.component = c } }

// WithToken sets the credential sent at hello; the broker checks it when
// the client claims the component "agent" (docs/SECURITY.md) and ignores
// it otherwise. Default none. The slice is copied. It is sent only to a
// broker that passed the identity check (see WithBrokerUID).
func WithToken(token []byte) ClientOption {
	token = append([]byte(nil), token...)
	return func(o *clientOptions) { o.token = token }
}

// WithBrokerUID makes the client accept only a broker that runs as uid
// (or root) instead of one that runs as this process's effective uid (or
// root), the default. The check is made on every connect, from the
// kernel's record of who listens on the socket, before the hello, and so
// the WithToken token, is written: a process that took over the socket's
// path gets nothing. A mismatch fails the connect with an error matching
// transport.ErrUntrustedBroker. Windows has no uids: there the option is
// ignored (see WithBrokerSID). InProcess clients are not checked.
func WithBrokerUID(uid uint32) ClientOption {
	return func(o *clientOptions) { o.dialOpts = append(o.dialOpts, transport.ExpectServerUID(uid)) }
}

// WithBrokerSID is WithBrokerUID for Windows: the broker's user must be
// sid ("S-1-5-..."), LocalSystem or a member of Administrators instead of
// this process's own user, LocalSystem or a member of Administrators, the
// default. An invalid SID fails every connect. Unix ignores the option.
func WithBrokerSID(sid string) ClientOption {
	return func(o *clientOptions) { o.dialOpts = append(o.dialOpts, transport.ExpectServerSID(sid)) }
}

// WithChannelSize sets the capacity of each Subscription's channel;
// default DefaultChannelSize.
func WithChannelSize(n int) ClientOption {
	return func(o *clientOptions) {
		if n > 0 {
			o.channelSize = n
		}
	}
}

// WithResendBuffer bounds the bytes of unconfirmed publishes the client
// keeps to send again after a reconnect; default DefaultResendBuffer. When
// more are unconfirmed, the oldest are no longer kept: if the connection
// then fails before they are confirmed, they are reported lost (LostError)
// instead of resent. 0 turns resending off.
func WithResendBuffer(n int) ClientOption {
	return func(o *clientOptions) {
		if n >= 0 {
			o.resendBuffer = n
		}
	}
}

// WithReconnect turns automatic reconnection on (default) or off.
func WithReconnect(on bool) ClientOption { return func(o *clientOptions) { o.reconnect = on } }

// WithBackoff sets the reconnect delay bounds; defaults 10ms and 2s.
func WithBackoff(minDelay, maxDelay time.Duration) ClientOption {
	return func(o *clientOptions) {
		if minDelay > 0 && maxDelay >= minDelay {
			o.minBackoff, o.maxBackoff = minDelay, maxDelay
		}
	}
}

// WithErrorHandler is called with errors that no call returns: publishes
// the broker refused, publishes lost with a connection. It runs on the
// client's reader goroutine and must not block.
func WithErrorHandler(f func(error)) ClientOption { return func(o *clientOptions) { o.onError = f } }

// WithDisconnectHandler is called when the connection fails and the
// client starts reconnecting.
func WithDisconnectHandler(f func(error)) ClientOption {
	return func(o *clientOptions) { o.onDisconnect = f }
}

// WithReconnectHandler is called after a reconnect, once the frames
// restoring the subscriptions are queued.
func WithReconnectHandler(f func()) ClientOption { return func(o *clientOptions) { o.onReconnect = f } }

// WithLogger sets the client's logger; default discards.
func WithLogger(l *slog.Logger) ClientOption { return func(o *clientOptions) { o.logger = l } }

// InProcessConnProvider hands the client a connection to a broker in the
// same process; *broker.Broker is one. An error matching net.ErrClosed
// means the broker has stopped for good: the client then stops
// reconnecting and closes.
type InProcessConnProvider interface {
	InProcessConn(ctx context.Context) (net.Conn, error)
}

// InProcess connects through p instead of a socket: Dial's addr is then
// ignored. The embedding agent uses it to talk to its own broker, which
// identifies such a client as its own process and admits it as the
// agent.
func InProcess(p InProcessConnProvider) ClientOption {
	return func(o *clientOptions) { o.inProcess = p }
}
