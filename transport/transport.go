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
	// ErrUntrustedBroker: the process listening at the path does not run
	// as a user Dial trusts (see [ExpectServerUID]).
	ErrUntrustedBroker = errors.New("transport: the broker runs as an untrusted user")
)

// Peer is a connected process's identity as the kernel reports it.
//
// On Linux, macOS and FreeBSD UID and GID are the peer's effective ids and
// SID is empty. PID is the peer's process id on Linux, macOS and FreeBSD 13
// or later (read from the xucred's cr_pid; FreeBSD 12 and older record no
// pid there, so PID is 0, meaning unknown). On Windows PID is the pipe
// client's process id, SID its user's security identifier in string form
// ("S-1-5-21-..."), and UID and GID are both ^uint32(0), which is also
// what uint32(os.Getuid()) gives there.
//
// Exe is the peer's executable path, read right after the credentials
// while the pid still names the process that connected: from
// /proc/<pid>/exe on Linux, kern.proc.pathname on FreeBSD and
// QueryFullProcessImageNameW on Windows. It is empty where the OS does not
// reveal it in a form the peer cannot forge (macOS), or when unreadable;
// a policy that names executables then refuses the peer (fails closed).
type Peer struct {
	UID, GID uint32
	PID      int
	SID      string
	Exe      string
}

const (
	envSocket   = "EVENTBUS_SOCKET"
	envRuntime  = "XDG_RUNTIME_DIR"
	socketName  = "eventbus.sock"
	windowsPipe = `\\.\pipe\eventbus`

	defaultMode os.FileMode = 0o600
	dirMode     os.FileMode = 0o700
)

// DefaultSDDL is the security descriptor a Windows pipe gets unless
// [WithSDDL] says otherwise: a protected DACL granting full access to the
// pipe's owner (the user the broker runs as), SYSTEM and the
// Administrators group, and nothing to anyone else (docs/SECURITY.md §1).
const DefaultSDDL = "D:P(A;;GA;;;OW)(A;;GA;;;SY)(A;;GA;;;BA)"

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
	mode      os.FileMode
	sddl      string
	sharedDir bool
}

// ListenOption configures [Listen].
type ListenOption func(*listenConfig)

// WithMode sets the socket file's permission bits; the default is 0600
// (owner only). Use 0660 to admit the owner's group as well. Bits other
// than permissions make Listen fail. Windows pipes have no mode: there
// the option is checked the same way and otherwise ignored (see
// [WithSDDL]).
func WithMode(perm os.FileMode) ListenOption {
	return func(c *listenConfig) { c.mode = perm }
}

// WithSDDL sets the security descriptor of a Windows pipe, in SDDL form;
// the default is [DefaultSDDL]. An empty string means the default. A
// descriptor Windows cannot parse makes Listen fail. Unix sockets ignore
// it (see [WithMode]).
func WithSDDL(sddl string) ListenOption {
	return func(c *listenConfig) { c.sddl = sddl }
}

// AllowSharedDir lets Listen use a socket directory that another uid owns
// or that group or others may write, such as a group-writable directory
// shared by a deployment's users. By default Listen refuses one
// ([ErrUnsafeDir]): whoever can write the directory can replace the
// socket. A symlink is refused even so. Windows pipes have no directory:
// there the option is ignored.
func AllowSharedDir() ListenOption {
	return func(c *listenConfig) { c.sharedDir = true }
}

// Listen creates the broker's endpoint at path and listens on it, following
// the steps in the package documentation.
//
// On Linux, macOS and FreeBSD path is a Unix domain socket path and the
// connections Listen accepts are *net.UnixConn, ready for [PeerOf]. A
// relative path is made absolute first, and the absolute path must fit the
// system's limit (107 bytes on Linux, 103 on macOS and FreeBSD), as must
// the path of the socket in the private directory it is bound in first
// (up to 16 bytes longer than the directory's). Another broker holding the
// path's lock file makes the error match [ErrBrokerRunning] and name its
// pid. The listener's Close stops accepting, removes the socket and lock
// files unless another listener has replaced them, and releases the lock;
// calling it again returns the first result.
//
// On Windows path is a named pipe, \\.\pipe\NAME. If a pipe of that name
// exists the error matches [ErrBrokerRunning]: a pipe lives only as long as
// a process holds it open, so it is never stale.
func Listen(path string, opts ...ListenOption) (net.Listener, error) {
	cfg := listenConfig{mode: defaultMode, sddl: DefaultSDDL}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	if cfg.mode&^os.ModePerm != 0 {
		return nil, fmt.Errorf("transport: listen %s: socket mode %v is not just permission bits (want e.g. 0600)", path, cfg.mode)
	}
	if cfg.sddl == "" {
		cfg.sddl = DefaultSDDL
	}
	return listen(path, cfg)
}

// Dial connects to the broker listening at path and, before returning,
// checks who listens there from what the kernel reports (SO_PEERCRED on
// Linux, LOCAL_PEERCRED on macOS and FreeBSD: the credentials the listener
// had when it called listen; the pipe server's process token on Windows). By default the broker must run as
// the caller's own effective uid or as root; on Windows as the caller's
// own user, LocalSystem or a member of Administrators. [ExpectServerUID]
// and [ExpectServerSID] name another user. Otherwise Dial closes the
// connection, having sent nothing, and returns an error matching
// [ErrUntrustedBroker] that names the broker's user and pid and the user
// expected. So whoever took over the path cannot read what the caller
// would have sent, a token least of all.
//
// The error matches [ErrNoBroker] if nothing listens there and
// [ErrPermission] (and os.ErrPermission) if the socket's mode or the
// pipe's security descriptor keeps the caller out.
//
// On Windows a pipe whose instances are all busy is retried until ctx ends,
// but for at most 2 seconds: then the error matches [ErrNoBroker] too,
// since a pipe that stays busy that long belongs to a broker that has
// stopped accepting (it is shutting down) or is overloaded.
func Dial(ctx context.Context, path string, opts ...DialOption) (net.Conn, error) {
	var cfg dialConfig
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	if err := resolveDial(path, &cfg); err != nil {
		return nil, err
	}
	conn, err := dial(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := verifyServer(conn, path, cfg); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Self returns this process's own identity, as [PeerOf] at the other end
// of a connection would report it: the effective uid and gid and the pid on
// Linux, macOS and FreeBSD (where PeerOf reports pid 0 before FreeBSD 13,
// Self still gives the real one); on Windows the pid and the user SID of
// the process token, with UID and GID ^uint32(0). The broker uses it for
// its in-process client and for the built-in policy, which admits
// components from the broker's own user.
//
// It fails only on Windows, if the process token cannot be read; the Peer
// returned then has everything but the SID.
func Self() (Peer, error) {
	return self()
}

// PeerOf returns the identity of the process at the other end of conn, which
// must be a connection Listen's Accept or Dial returned (a *net.UnixConn on
// Unix systems, a named pipe connection on Windows); for any other conn the
// error matches [ErrUnsupported]. The kernel records the identity when the
// peer connects, so it cannot be forged by what the peer later sends.
//
// On Windows the server end reads the client's process id from the pipe
// and its user from the token it presents: [Dial] allows the broker to
// identify (not impersonate) it. A client that dialed at the anonymous
// level is identified by its process's token instead.
func PeerOf(conn net.Conn) (Peer, error) {
	p, err := peerOf(conn)
	if err != nil {
		return Peer{}, err
	}
	p.Exe = exeOf(p.PID)
	return p, nil
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
