package transport

// The Windows transport: a named pipe through github.com/Microsoft/go-winio,
// with a security descriptor set when the pipe is created (docs/SECURITY.md §1).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

const (
	pipePrefix = `\\.\pipe\`
	// maxPipePath is the longest pipe name Windows accepts, prefix included.
	maxPipePath = 256
	// pipeBufferSize is each pipe instance's buffer in each direction.
	pipeBufferSize = 64 << 10
	// busyTimeout bounds how long Dial retries a pipe whose instances are
	// all busy. The broker makes a new instance each time it accepts, so a
	// pipe stays busy only while its broker has stopped accepting.
	busyTimeout = 2 * time.Second
	// noID is Peer.UID and Peer.GID on Windows; uint32(os.Getuid()) too.
	noID = ^uint32(0)
)

func listen(path string, cfg listenConfig) (net.Listener, error) {
	if err := checkPipePath("listen", path); err != nil {
		return nil, err
	}
	if underWine() {
		if err := wineRefuseLivePipe(path); err != nil {
			return nil, err
		}
	}
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{
		SecurityDescriptor: cfg.sddl,
		InputBufferSize:    pipeBufferSize,
		OutputBufferSize:   pipeBufferSize,
	})
	if err != nil {
		return nil, listenPipeError(path, err)
	}
	if underWine() {
		wineUseFirstInstance(path)
	}
	return ln, nil
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	if err := checkPipePath("dial", path); err != nil {
		return nil, err
	}
	busyCtx, cancel := context.WithTimeout(ctx, busyTimeout)
	defer cancel()
	// Identification level: the broker may read the token this client
	// presents (see clientSID), but not act as the client.
	conn, err := winio.DialPipeAccessImpLevel(busyCtx, path,
		windows.GENERIC_READ|windows.GENERIC_WRITE, winio.PipeImpLevelIdentification)
	switch {
	case err == nil:
		return conn, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("transport: dial %s: %w", path, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded): // busyTimeout, not ctx
		return nil, newError(ErrNoBroker, windows.ERROR_PIPE_BUSY,
			"no broker is accepting connections at %s: the pipe stayed busy for %v (is the broker shutting down?)",
			path, busyTimeout)
	}
	return nil, dialError(path, err)
}

// checkPipePath accepts \\.\pipe\NAME, where NAME is not empty and has no
// backslash, up to Windows' limit of 256 characters in all.
func checkPipePath(op, path string) error {
	name, ok := cutPrefixFold(path, pipePrefix)
	switch {
	case path == "":
		return fmt.Errorf("transport: %s: empty pipe path", op)
	case strings.IndexByte(path, 0) >= 0:
		return fmt.Errorf("transport: %s %q: pipe path contains a NUL byte", op, path)
	case !ok || name == "" || strings.Contains(name, `\`):
		return fmt.Errorf(`transport: %s %s: not a named pipe path; want \\.\pipe\NAME (NAME without backslashes)`, op, path)
	case len(path) > maxPipePath:
		return fmt.Errorf("transport: %s %s: pipe path is %d bytes; Windows allows at most %d", op, path, len(path), maxPipePath)
	}
	return nil
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case: pipe names are
// case-insensitive.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// listenPipeError explains why go-winio could not create the pipe. It
// creates the first instance with FILE_CREATE, which fails if a pipe of
// that name exists, whoever holds it: what FILE_FLAG_FIRST_PIPE_INSTANCE
// asks of CreateNamedPipe.
func listenPipeError(path string, err error) error {
	var sddlErr *winio.SddlConversionError
	switch {
	case errors.As(err, &sddlErr):
		return fmt.Errorf("transport: listen %s: invalid security descriptor %q: %w", path, sddlErr.Sddl, sddlErr.Err)
	case errors.Is(err, windows.ERROR_ACCESS_DENIED), errors.Is(err, windows.ERROR_ALREADY_EXISTS),
		errors.Is(err, windows.ERROR_PIPE_BUSY):
		return brokerRunning(path, pipeHolder(path), nil)
	}
	return fmt.Errorf("transport: listen %s: %w", path, err)
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, windows.ERROR_FILE_NOT_FOUND), errors.Is(err, windows.ERROR_PATH_NOT_FOUND):
		return newError(ErrNoBroker, err, "no broker is listening at %s (is `eventbus broker` running?)", path)
	case errors.Is(err, windows.ERROR_ACCESS_DENIED):
		return newError(ErrPermission, err, "permission denied on %s", path)
	}
	return fmt.Errorf("transport: dial %s: %w", path, err)
}
