//go:build linux || darwin || freebsd

package transport_test

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/transport/transporttest"
)

func TestConformance(t *testing.T) {
	f := transporttest.Factory{
		Addr: socketAddr,
		Self: transport.Peer{
			UID: uint32(os.Geteuid()),
			GID: uint32(os.Getegid()),
			PID: os.Getpid(),
		},
		CheckAccess: checkSocketMode,
		Deny:        transport.WithMode(0),
		MakeStale:   staleSocket,
		Expect:      transport.ExpectServerUID(uint32(os.Geteuid())),
		Untrusted:   transport.ExpectServerUID(uint32(os.Geteuid()) + 1),
	}
	if runtime.GOOS != "darwin" { // macOS reveals no executable the peer cannot forge
		f.Exe = executable(t)
	}
	if got, err := transport.Self(); err != nil || got != f.Self {
		t.Errorf("Self() = %+v, %v; want %+v", got, err, f.Self)
	}
	// On FreeBSD the peer's pid comes from the xucred, which FreeBSD 12 and
	// older (no longer supported by FreeBSD) leave without one: the pid is
	// 0 there and this fails.
	if os.Geteuid() == 0 {
		f.Deny = nil      // root ignores the socket's mode
		f.Untrusted = nil // and is trusted as a broker whatever uid is expected
	}
	transporttest.Run(t, f)
}

// socketAddr returns a socket path in a private directory short enough for
// sun_path (104 bytes on macOS and FreeBSD, 108 on Linux).
func socketAddr(t *testing.T) string {
	dir := t.TempDir()
	if len(dir) > 60 {
		var err error
		if dir, err = os.MkdirTemp("", "eb"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return filepath.Join(dir, "eventbus.sock")
}

func checkSocketMode(t *testing.T, _ net.Listener, path string) {
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v; want a socket with mode 0600", fi.Mode())
	}
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// broker that crashed would.
func staleSocket(t *testing.T, path string) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
}
