package transport

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListenRaceOnStaleSocket starts two Listen calls at once on a stale
// socket, round after round: exactly one must win, the other must be told
// a broker is running, and the socket on disk must be the winner's. Before
// the lock, both could see the stale socket, and the second to remove and
// bind left the first listening on an unlinked file.
func TestListenRaceOnStaleSocket(t *testing.T) {
	const rounds = 50
	path := filepath.Join(tempDir(t), "eventbus.sock")
	for round := range rounds {
		staleSocket(t, path)
		start := make(chan struct{})
		type result struct {
			ln  net.Listener
			err error
		}
		results := make([]result, 2)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				<-start
				ln, err := Listen(path)
				results[i] = result{ln, err}
			})
		}
		close(start)
		wg.Wait()
		var winners []net.Listener
		for _, r := range results {
			switch {
			case r.err == nil:
				winners = append(winners, r.ln)
			case !errors.Is(r.err, ErrBrokerRunning) || !strings.Contains(r.err.Error(), path):
				t.Errorf("round %d: losing Listen = %v; want ErrBrokerRunning naming %s", round, r.err, path)
			}
		}
		if len(winners) != 1 {
			for _, ln := range winners {
				ln.Close()
			}
			t.Fatalf("round %d: %d of 2 racing Listen calls succeeded; want exactly 1", round, len(winners))
		}
		ln := winners[0]
		// The socket at path must be the winner's: a dial reaches it.
		ln.(*listener).SetDeadline(time.Now().Add(10 * time.Second))
		connect(t, ln, path)
		if err := ln.Close(); err != nil {
			t.Fatalf("round %d: Close = %v", round, err)
		}
	}
}

func TestListenLockFile(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "eventbus.sock")
	lockPath := path + lockSuffix
	ln := mustListen(t, path)
	fi := lstat(t, lockPath)
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode = %v; want a regular file with mode 0600", fi.Mode())
	}
	if data, err := os.ReadFile(lockPath); err != nil || string(data) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q, %v; want this process's pid", data, err)
	}
	// Only the socket and its lock file: the directory the socket was
	// bound in is gone.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"eventbus.sock", "eventbus.sock.lock"}; !slices.Equal(names, want) {
		t.Errorf("socket directory holds %v; want %v", names, want)
	}
	if got := ln.Addr().String(); got != path {
		t.Errorf("Addr() = %q; want %q", got, path)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(lockPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file after Close: Lstat = %v; want it removed", err)
	}
}

// TestListenStaleLockFile: a broker that crashed leaves its lock file,
// unlocked, with its pid; the next broker takes it over.
func TestListenStaleLockFile(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	staleSocket(t, path)
	if err := os.WriteFile(path+lockSuffix, []byte("999999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := mustListen(t, path)
	connect(t, ln, path)
	if data, err := os.ReadFile(path + lockSuffix); err != nil || string(data) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q, %v; want this process's pid", data, err)
	}
}

func TestListenBadLockFile(t *testing.T) {
	tests := []struct {
		name   string
		create func(lockPath string) error
		want   string
	}{
		{"symlink", func(p string) error { return os.Symlink("/dev/null", p) }, "too many levels of symbolic links"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }, "is a directory"},
		{"FIFO", func(p string) error { return unix.Mkfifo(p, 0o600) }, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(tempDir(t), "eventbus.sock")
			if err := tt.create(path + lockSuffix); err != nil {
				t.Fatal(err)
			}
			ln, err := Listen(path)
			if err == nil {
				ln.Close()
				t.Fatal("Listen succeeded with a bad lock file")
			}
			if !strings.Contains(err.Error(), path+lockSuffix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Listen = %v; want an error naming %s and saying %q", err, path+lockSuffix, tt.want)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Listen left a socket behind: Lstat = %v", err)
			}
		})
	}
}

// TestListenUnlockedLiveSocket: a broker listening without the lock (an
// older one, or one whose lock file was removed) is found by the dial
// probe and named.
func TestListenUnlockedLiveSocket(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	ln := mustListen(t, path)
	if err := os.Remove(path + lockSuffix); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(path)
	want := "transport: a broker (pid " + strconv.Itoa(os.Getpid()) + ") is already listening at " + path
	if !errors.Is(err, ErrBrokerRunning) || err.Error() != want {
		t.Errorf("Listen = %v; want %q matching ErrBrokerRunning", err, want)
	}
	if _, err := os.Lstat(path + lockSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused Listen left its lock file: Lstat = %v", err)
	}
	connect(t, ln, path) // the first broker still works
}

// TestListenSocketAppearsWithItsMode watches the path while Listen runs:
// whenever the socket exists it must already have its final mode, and
// refuse connections until it listens (the old bind-then-chmod showed the
// umask's mode first).
func TestListenSocketAppearsWithItsMode(t *testing.T) {
	path := filepath.Join(tempDir(t), "eventbus.sock")
	for range 200 {
		done := make(chan struct{})
		var seen []os.FileMode
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if fi, err := os.Lstat(path); err == nil {
					seen = append(seen, fi.Mode())
				}
			}
		})
		ln, err := Listen(path, WithMode(0o640))
		close(done)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		for _, m := range seen {
			if m != fs.ModeSocket|0o640 {
				t.Fatalf("the socket appeared with mode %v; want %v", m, fs.ModeSocket|0o640)
			}
		}
	}
}

// TestListenTempDirTooLong: the socket is bound first in a directory
// beside it, whose longer path must fit sun_path too.
func TestListenTempDirTooLong(t *testing.T) {
	dir := tempDir(t)
	long := dir + "/" + strings.Repeat("d", maxPathLen-len(dir)-3)
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	path := long + "/s" // exactly maxPathLen bytes
	ln, err := Listen(path)
	if err == nil {
		ln.Close()
		t.Fatal("Listen succeeded although the path it binds first is too long")
	}
	if !strings.Contains(err.Error(), "is bound first at") || !strings.Contains(err.Error(), "at most 107") {
		t.Errorf("Listen = %v; want it to explain the temporary path's length", err)
	}
	if entries, _ := os.ReadDir(long); len(entries) != 0 {
		t.Errorf("Listen left %d entries in %s", len(entries), long)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if conn, err := Dial(ctx, path); !errors.Is(err, ErrNoBroker) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("Dial after the failed Listen = %v; want ErrNoBroker", err)
	}
}
