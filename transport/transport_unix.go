//go:build linux || darwin || freebsd

// The Unix domain socket transport, shared by every Unix system that has a
// peer credential call in peer_GOOS.go. Another Unix joins the build tag
// with such a file (and a check of sockCloexec and refusedMeansStale).

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

func listen(path string, cfg listenConfig) (net.Listener, error) {
	path, err := socketPath("listen", path)
	if err != nil {
		return nil, err
	}
	if err := prepareDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	return bindAndListen(path, cfg.mode)
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

// prepareDir creates a missing socket directory with mode 0700 and checks
// that a default per-user directory is private. It never changes the mode
// of a directory that already exists: that may be /tmp or the user's own.
func prepareDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return listenError(dir, err)
		}
	case err != nil:
		return listenError(dir, err)
	case !fi.IsDir():
		return fmt.Errorf("transport: listen: socket directory %s is not a directory (mode %v)", dir, fi.Mode())
	}
	if isDefaultDir(dir) {
		// Checked even when we just created it: another user may have
		// created it first, and MkdirAll accepts an existing directory.
		return checkPrivateDir(dir)
	}
	return nil
}

// isDefaultDir reports whether dir has the name of a DefaultPath directory.
func isDefaultDir(dir string) bool {
	base := filepath.Base(dir)
	return base == "eventbus" || base == tmpDirName()
}

// checkPrivateDir refuses a directory that someone else could use to swap
// the socket: anything but a real directory (Lstat: not a symlink) owned by
// our euid without group or other write permission. In /tmp another user
// can create /tmp/eventbus-<uid> before we do.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return listenError(dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("transport: listen: cannot read the owner of %s", dir)
	}
	euid := os.Geteuid()
	if fi.IsDir() && int(st.Uid) == euid && fi.Mode().Perm()&0o022 == 0 {
		return nil
	}
	return newError(ErrUnsafeDir, nil,
		"socket directory %s is not private: owner uid %d, mode %v; it must be a directory owned by uid %d that group and others cannot write",
		dir, st.Uid, fi.Mode(), euid)
}

// clearStale makes way for a new socket at path: nothing there is fine; a
// non-socket is refused; a socket is removed only if a dial is refused,
// which proves no process listens on it (docs/SECURITY.md §1). Where a full accept
// queue is refused too (the BSDs), the dial is tried staleProbes times.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return listenError(path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return newError(fs.ErrExist, nil,
			"listen %s: the path exists and is not a socket (mode %v); refusing to replace it", path, fi.Mode())
	}
	conn, err := probe(path)
	switch {
	case err == nil:
		conn.Close()
		return newError(ErrBrokerRunning, nil, "a broker is already listening at %s", path)
	case errors.Is(err, syscall.EAGAIN): // alive, its accept queue is full
		return newError(ErrBrokerRunning, err, "a broker is already listening at %s (and is busy)", path)
	case errors.Is(err, syscall.ENOENT): // removed meanwhile
		return nil
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("transport: listen %s: cannot tell whether a broker is listening there; leaving it in place: %w",
			path, dialError(path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return listenError(path, err)
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

// bindAndListen creates the socket so that no client can connect before
// its mode is set: bind creates the file, chmod restricts it, and only then
// does listen let connections in (before listen, connect is refused).
func bindAndListen(path string, mode os.FileMode) (_ net.Listener, err error) {
	fd, err := socketCloexec()
	if err != nil {
		return nil, listenError(path, os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), path) // owns fd; FileListener dups it
	defer f.Close()
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, listenError(path, os.NewSyscallError("bind", err))
	}
	created, err := os.Lstat(path)
	if err != nil {
		return nil, listenError(path, err)
	}
	defer func() {
		if err != nil {
			_ = removeIfSame(path, created) // best effort; the first error is what matters
		}
	}()
	if err := os.Chmod(path, mode); err != nil {
		return nil, listenError(path, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return nil, listenError(path, os.NewSyscallError("listen", err))
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, listenError(path, err)
	}
	return &listener{ln: ln.(*net.UnixListener), path: path, created: created}, nil
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

// removeIfSame removes path only if it is still the file created (same
// device and inode). While the creating socket is open its inode cannot be
// reused, so a match really is that file.
func removeIfSame(path string, created os.FileInfo) error {
	cur, err := os.Lstat(path)
	if err != nil || !os.SameFile(created, cur) {
		return nil // gone, or replaced by a newer broker's socket
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// listener is the *net.UnixListener Listen returns, with a Close that
// removes only its own socket file. It does not embed the UnixListener so
// that SetUnlinkOnClose cannot bring back an unconditional unlink.
type listener struct {
	ln      *net.UnixListener
	path    string
	created os.FileInfo

	once sync.Once
	err  error // result of the first Close
}

func (l *listener) Accept() (net.Conn, error) { return l.ln.Accept() }

func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// SetDeadline sets the deadline for Accept, as on *net.UnixListener.
func (l *listener) SetDeadline(t time.Time) error { return l.ln.SetDeadline(t) }

func (l *listener) Close() error {
	l.once.Do(func() {
		// Remove before closing: while we still listen, another Listen's
		// probe sees a live broker and leaves the file alone.
		rmErr := removeIfSame(l.path, l.created)
		if rmErr != nil {
			rmErr = fmt.Errorf("transport: close %s: %w", l.path, rmErr)
		}
		l.err = errors.Join(l.ln.Close(), rmErr)
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
