//go:build linux || darwin || freebsd

// The Unix domain socket transport, shared by every Unix system that has a
// peer credential call in peer_GOOS.go. Another Unix joins the build tag
// with such a file and a sys_GOOS.go (socketCloexec, staleProbes,
// renameNoReplace).

package transport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// sunPathLen is the size of sun_path: 108 bytes on Linux, 104 on macOS
	// and FreeBSD.
	sunPathLen = len(unix.RawSockaddrUnix{}.Path)
	// maxPathLen is sun_path less its terminating NUL.
	maxPathLen = sunPathLen - 1
	// backlog is the listen queue length; the kernel caps it at
	// net.core.somaxconn.
	backlog = 4096
	// probeTimeout bounds the dial that tells a live socket from a stale one.
	probeTimeout = time.Second
	// staleRetry is the pause between probes where one refusal is not proof
	// (staleProbes > 1).
	staleRetry = 50 * time.Millisecond
)

func listen(path string, cfg listenConfig) (_ net.Listener, err error) {
	path, err = socketPath("listen", path)
	if err != nil {
		return nil, err
	}
	dir, err := openSocketDir(filepath.Dir(path), cfg.sharedDir)
	if err != nil {
		return nil, err
	}
	defer dir.close()
	lock, err := lockEndpoint(dir, path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = lock.release() // the first error is what matters
		}
	}()
	if err := clearStale(dir, path); err != nil {
		return nil, err
	}
	ln, err := bindAndListen(dir, path, cfg.mode)
	if err != nil {
		return nil, err
	}
	ln.lock = lock
	return ln, nil
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	path, err := socketPath("dial", path)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, dialError(path, err)
	}
	return conn, nil
}

// resolveDial has nothing to resolve on Unix: ExpectServerSID is ignored.
func resolveDial(string, *dialConfig) error { return nil }

// verifyServer checks the listener's credentials, which the kernel
// recorded when it called listen.
func verifyServer(conn net.Conn, path string, cfg dialConfig) error {
	p, err := peerOf(conn)
	if err != nil {
		return unverified(path, err)
	}
	want, own := uint32(os.Geteuid()), true
	if cfg.hasUID {
		want, own = cfg.uid, false
	}
	return checkUID(path, server{uid: p.UID, pid: p.PID}, want, own)
}

// socketPath validates path and makes it absolute, so that the file Close
// removes is the one Listen created even if the process changes directory.
func socketPath(op, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("transport: %s: empty socket path", op)
	}
	if strings.IndexByte(path, 0) >= 0 {
		return "", fmt.Errorf("transport: %s %q: socket path contains a NUL byte", op, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("transport: %s %s: %w", op, path, err)
	}
	if len(abs) > maxPathLen {
		return "", fmt.Errorf("transport: %s %s: socket path is %d bytes; %s allows at most %d (sun_path is %d bytes including the NUL)",
			op, abs, len(abs), osName, maxPathLen, sunPathLen)
	}
	return abs, nil
}

// clearStale makes way for a new socket at path once the lock is held:
// nothing there is fine; a non-socket is refused; a socket is removed only
// if a dial is refused, which proves no process listens on it (a broker
// that predates the lock, or whose lock file was deleted, still answers).
// Where a full accept queue is refused too (the BSDs), the dial is tried
// staleProbes times.
func clearStale(d *socketDir, path string) error {
	name := filepath.Base(path)
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return listenError(path, os.NewSyscallError("fstatat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return newError(fs.ErrExist, nil,
			"listen %s: the path exists and is not a socket (mode %v); refusing to replace it", path, modeOf(&st))
	}
	conn, err := probe(path)
	switch {
	case err == nil:
		pid := 0
		if p, err := peerOf(conn); err == nil {
			pid = p.PID
		}
		conn.Close()
		return brokerRunning(path, pid, nil)
	case errors.Is(err, syscall.EAGAIN): // alive, its accept queue is full
		return newError(ErrBrokerRunning, err, "a broker is already listening at %s (and is busy)", path)
	case errors.Is(err, syscall.ENOENT): // removed meanwhile
		return nil
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("transport: listen %s: cannot tell whether a broker is listening there; leaving it in place: %w",
			path, dialError(path, err))
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return listenError(path, os.NewSyscallError("unlink", err))
	}
	return nil
}

// probe dials path to tell a live socket from a stale one. Linux refuses a
// connection only when nobody listens (a full queue gives EAGAIN); macOS and
// FreeBSD also refuse one when the listener's queue is full, so there a
// refusal counts only if it persists for staleProbes dials, staleRetry
// apart, long enough for a live broker to drain its queue.
func probe(path string) (net.Conn, error) {
	for i := 1; ; i++ {
		conn, err := net.DialTimeout("unix", path, probeTimeout)
		if i >= staleProbes || !errors.Is(err, syscall.ECONNREFUSED) {
			return conn, err
		}
		time.Sleep(staleRetry)
	}
}

func listenError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return newError(ErrPermission, err, "permission denied on %s", path)
	}
	return fmt.Errorf("transport: listen %s: %w", path, err)
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ECONNREFUSED):
		return newError(ErrNoBroker, err, "no broker is listening at %s (is `eventbus broker` running?)", path)
	case errors.Is(err, fs.ErrPermission):
		return newError(ErrPermission, err, "permission denied on %s", path)
	case errors.Is(err, syscall.EAGAIN):
		return newError(nil, err, "the broker at %s is not accepting connections (its queue is full)", path)
	}
	return fmt.Errorf("transport: dial %s: %w", path, err)
}

// listener is the *net.UnixListener Listen returns, with a Close that
// removes only its own socket file and then gives up the lock. It does not
// embed the UnixListener so that SetUnlinkOnClose cannot bring back an
// unconditional unlink.
type listener struct {
	ln      *net.UnixListener
	addr    *net.UnixAddr
	created fileID
	lock    *endpointLock

	once sync.Once
	err  error // result of the first Close
}

func newListener(f *os.File, path string, created fileID) (*listener, error) {
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, listenError(path, err)
	}
	return &listener{ln: ln.(*net.UnixListener), addr: &net.UnixAddr{Name: path, Net: "unix"}, created: created}, nil
}

func (l *listener) Accept() (net.Conn, error) { return l.ln.Accept() }

// Addr is the socket's path (the kernel knows it by the name it was bound
// under, in the directory since removed).
func (l *listener) Addr() net.Addr { return l.addr }

// SetDeadline sets the deadline for Accept, as on *net.UnixListener.
func (l *listener) SetDeadline(t time.Time) error { return l.ln.SetDeadline(t) }

func (l *listener) Close() error {
	l.once.Do(func() {
		// Remove before closing, so a client dialing meanwhile finds no
		// socket rather than a dead one; unlock last, so no other broker
		// takes the path before this one has left it.
		rmErr := removeIfSame(l.addr.Name, l.created)
		if rmErr != nil {
			rmErr = fmt.Errorf("transport: close %s: %w", l.addr.Name, rmErr)
		}
		l.err = errors.Join(l.ln.Close(), rmErr, l.lock.release())
	})
	return l.err
}

// peerCred runs read on conn's descriptor to get the peer's credentials;
// read is the per-OS part of peerOf.
func peerCred(conn net.Conn, read func(fd int) (Peer, error)) (Peer, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return Peer{}, newError(ErrUnsupported, nil,
			"peer credentials need a Unix socket connection (*net.UnixConn), not %T", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("transport: peer credentials: %w", err)
	}
	var peer Peer
	var readErr error
	if err := raw.Control(func(fd uintptr) { peer, readErr = read(int(fd)) }); err != nil {
		readErr = err
	}
	if readErr != nil {
		return Peer{}, fmt.Errorf("transport: peer credentials: %w", readErr)
	}
	return peer, nil
}
