package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// Sentinels for errors.Is. Returned errors wrap one of them together with
// the underlying cause and carry the path in their message.
var (
	ErrNoBroker      = errors.New("transport: no broker is listening")
	ErrBrokerRunning = errors.New("transport: a broker is already listening")
	ErrPermission    = errors.New("transport: permission denied")
	ErrUnsupported   = errors.New("transport: not supported on this OS yet")
	ErrUnsafeDir     = errors.New("transport: socket directory is not private")
)

// Peer is a connected process's identity as the kernel reports it.
type Peer struct {
	UID, GID uint32
	PID      int
}

const (
	envSocket   = "EVENTBUS_SOCKET"
	envRuntime  = "XDG_RUNTIME_DIR"
	socketName  = "eventbus.sock"
	windowsPipe = `\\.\pipe\eventbus`

	defaultMode os.FileMode = 0o600
	dirMode     os.FileMode = 0o700
)

// DefaultPath returns the socket path a broker and its clients agree on
// without configuration: $EVENTBUS_SOCKET if set, else
// $XDG_RUNTIME_DIR/eventbus/eventbus.sock if XDG_RUNTIME_DIR is an absolute
// path, else /tmp/eventbus-<uid>/eventbus.sock. On Windows the fallback is
// the named pipe \\.\pipe\eventbus.
func DefaultPath() string {
	if p := os.Getenv(envSocket); p != "" {
		return p
	}
	if runtime.GOOS == "windows" {
		return windowsPipe
	}
	// The XDG spec says to ignore a relative XDG_RUNTIME_DIR.
	if dir := os.Getenv(envRuntime); filepath.IsAbs(dir) {
		return filepath.Join(dir, "eventbus", socketName)
	}
	// Always /tmp, not os.TempDir(): clients with a different TMPDIR must
	// still find the broker.
	return filepath.Join("/tmp", tmpDirName(), socketName)
}

// tmpDirName is the per-user directory name under /tmp.
func tmpDirName() string {
	uid := os.Getuid()
	if uid < 0 { // Windows and other systems without uids
		return "eventbus"
	}
	return "eventbus-" + strconv.Itoa(uid)
}

type listenConfig struct {
	mode os.FileMode
}

// ListenOption configures [Listen].
type ListenOption func(*listenConfig)

// WithMode sets the socket file's permission bits; the default is 0600
// (owner only). Use 0660 to admit the owner's group as well. Bits other
// than permissions make Listen fail.
func WithMode(perm os.FileMode) ListenOption {
	return func(c *listenConfig) { c.mode = perm }
}

// Listen creates a Unix domain socket at path and listens on it, following
// the steps in the package documentation. Connections it accepts are
// *net.UnixConn, ready for [PeerOf]. A relative path is made absolute first,
// and the absolute path must fit the system's limit (107 bytes on Linux).
//
// The listener's Close stops accepting and removes the socket file unless
// another listener has replaced it; calling it again returns the first
// result.
func Listen(path string, opts ...ListenOption) (net.Listener, error) {
	cfg := listenConfig{mode: defaultMode}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	if cfg.mode&^os.ModePerm != 0 {
		return nil, fmt.Errorf("transport: listen %s: socket mode %v is not just permission bits (want e.g. 0600)", path, cfg.mode)
	}
	return listen(path, cfg)
}

// Dial connects to the broker listening at path. The error matches
// [ErrNoBroker] if nothing listens there and [ErrPermission] (and
// os.ErrPermission) if the socket's mode keeps the caller out.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	return dial(ctx, path)
}

// PeerOf returns the identity of the process at the other end of conn, which
// must be a *net.UnixConn such as Listen's Accept returns; for any other conn
// the error matches [ErrUnsupported]. The kernel records the identity when
// the peer connects, so it cannot be forged by what the peer later sends.
func PeerOf(conn net.Conn) (Peer, error) {
	return peerOf(conn)
}

// transportError is a message for people that names the path, a
// sentinel for errors.Is, and the underlying cause.
type transportError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *transportError) Error() string { return "transport: " + e.msg }

func (e *transportError) Unwrap() []error {
	errs := make([]error, 0, 2)
	for _, err := range []error{e.sentinel, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func newError(sentinel, cause error, format string, args ...any) error {
	return &transportError{msg: fmt.Sprintf(format, args...), sentinel: sentinel, cause: cause}
}
