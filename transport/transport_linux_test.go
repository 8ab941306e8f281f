package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobody is the uid and gid tests use for "another user" when run as root.
const nobody = 65534

const helperPathEnv = "EVENTBUS_TRANSPORT_TEST_PATH"

// helperMain runs in a child process (see TestMain), in mode "dial" or
// "listen" (helperListen).
func helperMain(mode string) int {
	if mode == "listen" {
		return helperListen(os.Getenv(helperPathEnv))
	}
	return helperDial()
}

// helperDial dials the socket at $EVENTBUS_TRANSPORT_TEST_PATH and reports
// the result on stdout. After a successful dial it holds the connection
// until the parent closes it, so the parent can read its credentials.
func helperDial() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, os.Getenv(helperPathEnv))
	if err != nil {
		fmt.Printf("permission=%t os-permission=%t\n%s\n",
			errors.Is(err, ErrPermission), errors.Is(err, os.ErrPermission), err)
		return 0
	}
	defer conn.Close()
	fmt.Println("connected")
	_, _ = io.Copy(io.Discard, conn)
	return 0
}

// helperAsNobody returns a command that runs helperMain in mode as uid/gid
// 65534 against path. The test binary is copied to a directory that user
// can reach, because go test keeps it in a private one.
func helperAsNobody(t *testing.T, mode, path string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(publicDir(t), "helper.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd, &out
}

// tempDir returns a private directory short enough for socket paths under
// it (sun_path holds 107 bytes).
func tempDir(t *testing.T) string {
	t.Helper()
	if dir := t.TempDir(); len(dir) <= 60 {
		return dir
	}
	dir, err := os.MkdirTemp("", "eb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// publicDir returns a mode 0755 directory another user can reach.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "eb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustListen(t *testing.T, path string, opts ...ListenOption) net.Listener {
	t.Helper()
	ln, err := Listen(path, opts...)
	if err != nil {
		t.Fatalf("Listen(%q) = %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// connect dials path and accepts the connection on ln. Both ends are closed
// when the test ends.
func connect(t *testing.T, ln net.Listener, path string) (client, server net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial(%q) = %v", path, err)
	}
	t.Cleanup(func() { client.Close() })
	// The connection is already queued, so Accept returns at once.
	server, err = ln.Accept()
	if err != nil {
		t.Fatalf("Accept() = %v", err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// broker that crashed would.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
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

func lstat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestListenModes(t *testing.T) {
	tests := []struct {
		name string
		sub  string // missing directories under the temp dir
		opts []ListenOption
		want os.FileMode
	}{
		{"default", "run", nil, 0o600},
		{"WithMode 0660", "run", []ListenOption{WithMode(0o660)}, 0o660},
		{"WithMode 0", "a/b", []ListenOption{WithMode(0)}, 0},
		{"nil option", "run", []ListenOption{nil}, 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(tempDir(t), tt.sub)
			path := filepath.Join(dir, "eventbus.sock")
			mustListen(t, path, tt.opts...)
			fi := lstat(t, path)
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tt.want {
				t.Errorf("socket mode = %v; want a socket with mode %v", fi.Mode(), tt.want)
			}
			if got := lstat(t, dir).Mode(); got != fs.ModeDir|dirMode {
				t.Errorf("created directory mode = %v; want %v", got, fs.ModeDir|dirMode)
			}
		})
	}
}

func TestListenKeepsExistingDirMode(t *testing.T) {
	dir := publicDir(t) // 0755, not a default directory name
	mustListen(t, filepath.Join(dir, "eventbus.sock"))
	if got := lstat(t, dir).Mode().Perm(); got != 0o755 {
		t.Errorf("existing directory mode = %v after Listen; want it left at 0755", got)
	}
}

func TestListenBadInput(t *testing.T) {
	dir := tempDir(t)
	long := filepath.Join(dir, strings.Repeat("x", maxPathLen))
	tests := []struct {
		name, path string
		opts       []ListenOption
		wantText   string
	}{
		{"empty path", "", nil, "empty socket path"},
		{"NUL byte", dir + "/a\x00b", nil, "NUL"},
		{"too long", long, nil, "at most 107"},
		{"mode with type bits", filepath.Join(dir, "m.sock"), []ListenOption{WithMode(fs.ModeDir | 0o600)}, "permission bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := Listen(tt.path, tt.opts...)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) succeeded; want an error", tt.path)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Listen(%q) = %v; want an error mentioning %q", tt.path, err, tt.wantText)
			}
		})
	}
}

func TestListenPathLimit(t *testing.T) {
	dir := tempDir(t)
	for _, n := range []int{maxPathLen, maxPathLen + 1} {
		path := dir + "/" + strings.Repeat("s", n-len(dir)-1)
		ln, err := Listen(path)
		if ok := n <= maxPathLen; (err == nil) != ok {
			t.Errorf("Listen(<%d-byte path>) error = %v; want success %t", n, err, ok)
		}
		if err == nil {
			ln.Close()
		}
	}
}

func TestListenLiveBroker(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	ln := mustListen(t, path)
	before := lstat(t, path)

	ln2, err := Listen(path)
	if err == nil {
		ln2.Close()
		t.Fatal("second Listen succeeded; want ErrBrokerRunning")
	}
	want := fmt.Sprintf("transport: a broker (pid %d) is already listening at %s", os.Getpid(), path)
	if !errors.Is(err, ErrBrokerRunning) || err.Error() != want {
		t.Errorf("second Listen = %v; want %q matching ErrBrokerRunning", err, want)
	}
	if !os.SameFile(before, lstat(t, path)) {
		t.Error("second Listen replaced the live socket file")
	}
	connect(t, ln, path) // the first broker still works
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	staleSocket(t, path)
	// No inode check: the freed inode number is often reused at once.
	ln := mustListen(t, path)
	connect(t, ln, path)
}

func TestListenRefusesNonSocket(t *testing.T) {
	tests := []struct {
		name   string
		create func(path string) error
	}{
		{"regular file", func(p string) error { return os.WriteFile(p, []byte("keep me"), 0o600) }},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"symlink", func(p string) error { return os.Symlink("/dev/null", p) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(tempDir(t), "eventbus.sock")
			if err := tt.create(path); err != nil {
				t.Fatal(err)
			}
			before := lstat(t, path)
			ln, err := Listen(path)
			if err == nil {
				ln.Close()
				t.Fatal("Listen succeeded over a non-socket")
			}
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "not a socket") {
				t.Errorf("Listen = %v; want fs.ErrExist saying it is not a socket", err)
			}
			if after := lstat(t, path); !os.SameFile(before, after) || after.Size() != before.Size() {
				t.Error("Listen changed the file in the way")
			}
		})
	}
}

func TestListenUnsafeDir(t *testing.T) {
	uidDir := "eventbus-" + strconv.Itoa(os.Getuid())
	shared := []ListenOption{AllowSharedDir()}
	tests := []struct {
		name, dir string
		mode      os.FileMode
		chown     bool // to nobody; needs root
		symlink   bool // the directory is a symlink to a private one
		opts      []ListenOption
		unsafe    bool
	}{
		{name: "eventbus 0700", dir: "eventbus", mode: 0o700},
		{name: "eventbus 0755", dir: "eventbus", mode: 0o755},
		{name: "other name 0750", dir: "run", mode: 0o750},
		{name: "eventbus 0777", dir: "eventbus", mode: 0o777, unsafe: true},
		{name: "eventbus 0770", dir: "eventbus", mode: 0o770, unsafe: true},
		{name: uidDir + " 0722", dir: uidDir, mode: 0o722, unsafe: true},
		{name: "other name 0777", dir: "shared", mode: 0o777, unsafe: true},
		{name: "other name 0775", dir: "shared", mode: 0o775, unsafe: true},
		{name: "sticky 1777, like /tmp", dir: "tmp", mode: os.ModeSticky | 0o777, unsafe: true},
		{name: uidDir + " owned by nobody", dir: uidDir, mode: 0o700, chown: true, unsafe: true},
		{name: "other name owned by nobody", dir: "run", mode: 0o755, chown: true, unsafe: true},
		{name: "eventbus symlink", dir: "eventbus", mode: 0o700, symlink: true, unsafe: true},
		{name: "other name symlink", dir: "run", mode: 0o700, symlink: true, unsafe: true},
		{name: "shared 0770 allowed", dir: "shared", mode: 0o770, opts: shared},
		{name: "shared 1777 allowed", dir: "shared", mode: os.ModeSticky | 0o777, opts: shared},
		{name: "owned by nobody allowed", dir: "shared", mode: 0o755, chown: true, opts: shared},
		{name: "symlink even if shared", dir: "shared", mode: 0o700, symlink: true, opts: shared, unsafe: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.chown && os.Geteuid() != 0 {
				t.Skip("needs root to give the directory to another user")
			}
			base := tempDir(t)
			dir := filepath.Join(base, tt.dir)
			real := dir
			if tt.symlink {
				real = filepath.Join(base, "real")
				if err := os.Symlink(real, dir); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Mkdir(real, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(real, tt.mode); err != nil { // beat the umask
				t.Fatal(err)
			}
			if tt.chown {
				if err := os.Chown(real, nobody, nobody); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "eventbus.sock")
			ln, err := Listen(path, tt.opts...)
			if err == nil {
				ln.Close()
			}
			if !tt.unsafe {
				if err != nil {
					t.Errorf("Listen = %v; want success", err)
				}
				return
			}
			if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Listen = %v; want ErrUnsafeDir naming %s", err, dir)
			}
			if !tt.symlink {
				fi := lstat(t, real)
				owner := fi.Sys().(*syscall.Stat_t).Uid
				if want := fmt.Sprintf("owner uid %d, mode %v", owner, fi.Mode()); err != nil && !strings.Contains(err.Error(), want) {
					t.Errorf("Listen = %v; want it to say %q", err, want)
				}
			}
			if entries, _ := os.ReadDir(real); len(entries) != 0 {
				t.Errorf("Listen left %d entries (%s, ...) in an unsafe directory", len(entries), entries[0].Name())
			}
		})
	}
}

func TestListenDefaultPath(t *testing.T) {
	runtimeDir := tempDir(t)
	t.Setenv(envSocket, "")
	t.Setenv(envRuntime, runtimeDir)
	ln := mustListen(t, DefaultPath())
	dir := filepath.Join(runtimeDir, "eventbus")
	if got := lstat(t, dir).Mode(); got != fs.ModeDir|dirMode {
		t.Errorf("%s mode = %v; want %v", dir, got, fs.ModeDir|dirMode)
	}
	connect(t, ln, DefaultPath())
}

func TestDialNoBroker(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (path string)
	}{
		{"missing file", func(t *testing.T, dir string) string { return filepath.Join(dir, "x.sock") }},
		{"missing directory", func(t *testing.T, dir string) string { return filepath.Join(dir, "nope", "x.sock") }},
		{"stale socket", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x.sock")
			staleSocket(t, p)
			return p
		}},
		{"regular file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x.sock")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, tempDir(t))
			conn, err := Dial(context.Background(), path)
			if err == nil {
				conn.Close()
				t.Fatal("Dial succeeded; want ErrNoBroker")
			}
			want := "transport: no broker is listening at " + path + " (is `eventbus broker` running?)"
			if !errors.Is(err, ErrNoBroker) || err.Error() != want {
				t.Errorf("Dial = %v; want %q matching ErrNoBroker", err, want)
			}
		})
	}
}

func TestDialBadInput(t *testing.T) {
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	path := filepath.Join(tempDir(t), "eventbus.sock")
	mustListen(t, path)
	tests := []struct {
		name string
		ctx  context.Context
		path string
		want error // nil: any error
	}{
		{"empty path", ctx, "", nil},
		{"too long", ctx, "/" + strings.Repeat("x", maxPathLen), nil},
		{"canceled context", canceled, path, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := Dial(tt.ctx, tt.path)
			if err == nil {
				conn.Close()
				t.Fatal("Dial succeeded; want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Dial = %v; want an error matching %v", err, tt.want)
			}
		})
	}
}

func TestDialPermissionDenied(t *testing.T) {
	path := filepath.Join(publicDir(t), "x.sock")
	mustListen(t, path, WithMode(0))
	want := "transport: permission denied on " + path
	if os.Geteuid() != 0 {
		conn, err := Dial(context.Background(), path)
		if err == nil {
			conn.Close()
			t.Fatal("Dial to a mode 0000 socket succeeded")
		}
		if !errors.Is(err, ErrPermission) || !errors.Is(err, os.ErrPermission) || err.Error() != want {
			t.Errorf("Dial = %v; want %q matching ErrPermission and os.ErrPermission", err, want)
		}
		return
	}
	// Root bypasses the check, so dial from a child running as nobody.
	cmd, out := helperAsNobody(t, "dial", path)
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	wantOut := "permission=true os-permission=true\n" + want + "\n"
	if out.String() != wantOut {
		t.Errorf("Dial as uid %d reported:\n%s\nwant:\n%s", nobody, out, wantOut)
	}
}

func TestPeerOf(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	ln := mustListen(t, path)
	client, server := connect(t, ln, path)
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	want := Peer{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), PID: os.Getpid(), Exe: exe}
	for name, conn := range map[string]net.Conn{"accepted": server, "dialed": client} {
		if got, err := PeerOf(conn); err != nil || got != want {
			t.Errorf("PeerOf(%s conn) = %+v, %v; want %+v", name, got, err, want)
		}
	}
	server.Close()
	if got, err := PeerOf(server); err == nil {
		t.Errorf("PeerOf(closed conn) = %+v, nil; want an error", got)
	}
}

func TestPeerOfOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	path := filepath.Join(publicDir(t), "eventbus.sock")
	ln := mustListen(t, path, WithMode(0o666))
	cmd, out := helperAsNobody(t, "dial", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("Accept() = %v; helper said:\n%s", err, out)
	}
	got, err := PeerOf(conn)
	conn.Close()                                                                // lets the helper exit
	want := Peer{UID: nobody, GID: nobody, PID: cmd.Process.Pid, Exe: cmd.Path} // a copy of this test binary
	if err != nil || got != want {
		t.Errorf("PeerOf = %+v, %v; want %+v", got, err, want)
	}
}

func TestListenerClose(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := ln.Close(); err != nil {
			t.Errorf("Close #%d = %v; want nil", i+1, err)
		}
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: Lstat = %v; want it removed", err)
	}
	if conn, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
}

func TestCloseKeepsNewerSocket(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	old, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// The old broker loses its files (say, to a careless rm) and a new one
	// starts; closing the old one must not delete the new one's socket or
	// lock file.
	for _, p := range []string{path, path + lockSuffix} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	ln := mustListen(t, path)
	newer, newerLock := lstat(t, path), lstat(t, path+lockSuffix)
	if err := old.Close(); err != nil {
		t.Errorf("old Close = %v; want nil", err)
	}
	for p, want := range map[string]os.FileInfo{path: newer, path + lockSuffix: newerLock} {
		if fi, err := os.Lstat(p); err != nil || !os.SameFile(fi, want) {
			t.Errorf("after the old listener closed, Lstat(%s) = %v; want the newer listener's file in place", p, err)
		}
	}
	if ln2, err := Listen(path); !errors.Is(err, ErrBrokerRunning) {
		if err == nil {
			ln2.Close()
		}
		t.Errorf("Listen after the old listener closed = %v; want ErrBrokerRunning (the newer one holds the lock)", err)
	}
	connect(t, ln, path)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + lockSuffix} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after the newer listener closed, Lstat(%s) = %v; want it removed", p, err)
		}
	}
}
