package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helperListen listens at path and, for each connection, reports on stdout
// how many bytes its client sent before closing: "conn N read M". It
// prints "listening" once clients may connect, and stops when its stdin
// closes.
func helperListen(path string) int {
	ln, err := Listen(path)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("listening")
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	for i := 1; ; i++ {
		conn, err := ln.Accept()
		if err != nil {
			return 0
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, conn)
		conn.Close()
		fmt.Printf("conn %d read %d (%v)\n", i, n, err)
	}
}

// squatter is a helperListen process running as nobody.
type squatter struct {
	path  string
	pid   int
	lines *bufio.Scanner
}

// startSquatter runs helperListen as uid nobody on a socket in a
// directory that user owns, as someone who took over a socket's path
// would, and waits until it listens.
func startSquatter(t *testing.T) *squatter {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a listener as another user (uid 65534)")
	}
	dir := filepath.Join(publicDir(t), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "eventbus.sock")
	cmd, stderr := helperAsNobody(t, "listen", path)
	cmd.Stdout = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the helper's signal to stop
		if err := cmd.Wait(); err != nil {
			t.Errorf("squatter: %v; stderr:\n%s", err, stderr)
		}
	})
	s := &squatter{path: path, pid: cmd.Process.Pid, lines: bufio.NewScanner(stdout)}
	if got := s.line(t); got != "listening" {
		t.Fatalf("squatter said %q; want \"listening\"; stderr:\n%s", got, stderr)
	}
	return s
}

// line returns the squatter's next line of output. It ends with the
// process, so a hung helper fails the test through the helper's own
// deadline rather than hanging it.
func (s *squatter) line(t *testing.T) string {
	t.Helper()
	if !s.lines.Scan() {
		t.Fatalf("squatter ended its output early: %v", s.lines.Err())
	}
	return s.lines.Text()
}

// TestDialRefusesUntrustedBroker dials a listener that runs as another
// user: Dial must fail naming both users, before sending anything, unless
// told to expect that user.
func TestDialRefusesUntrustedBroker(t *testing.T) {
	s := startSquatter(t)
	tests := []struct {
		name    string
		opts    []DialOption
		wantErr string // "": Dial must succeed
	}{
		{"default", nil, "want root (uid 0)"},
		{"ExpectServerUID(1000)", []DialOption{ExpectServerUID(1000)}, "want uid 1000 or root"},
		{"ExpectServerSID ignored", []DialOption{ExpectServerSID("S-1-5-32-544")}, "want root (uid 0)"},
		{"ExpectServerUID(nobody)", []DialOption{ExpectServerUID(nobody)}, ""},
		{"ExpectServerUID, last wins", []DialOption{ExpectServerUID(nobody), ExpectServerUID(1000)}, "want uid 1000 or root"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := Dial(ctx, s.path, tt.opts...)
			sent := 0
			if err == nil {
				n, werr := conn.Write([]byte("hello"))
				if werr != nil {
					t.Errorf("Write to the expected broker = %v", werr)
				}
				sent = n
				conn.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Dial = %v; want success", err)
			case tt.wantErr != "":
				want := fmt.Sprintf("transport: untrusted broker at %s: it runs as uid %d (pid %d); %s", s.path, nobody, s.pid, tt.wantErr)
				if !errors.Is(err, ErrUntrustedBroker) || err == nil || err.Error() != want {
					t.Errorf("Dial = %v; want %q matching ErrUntrustedBroker", err, want)
				}
			}
			// Each Dial reached the squatter, which reports what it got.
			want := fmt.Sprintf("conn %d read %d ", i+1, sent)
			if got := s.line(t); !strings.HasPrefix(got, want) {
				t.Errorf("squatter: %q; want %q...", got, want)
			}
		})
	}
}
