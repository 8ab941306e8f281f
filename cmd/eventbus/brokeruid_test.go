//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/transport"
)

// squatEnv makes the test binary a squatter (see squat) on the socket
// path it holds, before any test runs.
const squatEnv = "EVENTBUS_CMD_TEST_SQUAT"

// nobody is the uid and gid the squatter runs as.
const nobody = 65534

func init() {
	if path := os.Getenv(squatEnv); path != "" {
		os.Exit(squat(path))
	}
}

// squat listens at path, as a process that took over a broker's socket
// path would, and for each connection prints "conn N read M": the bytes
// its client sent before closing, 0 if it closed having sent nothing. It
// prints "listening" first, and exits when its stdin closes.
func squat(path string) int {
	ln, err := transport.Listen(path)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("listening")
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				ln.Close()
				return
			}
		}
	}()
	for i := 1; ; i++ {
		conn, err := ln.Accept()
		if err != nil {
			return 0
		}
		conn.SetDeadline(time.Now().Add(waitLimit))
		// One read: it returns as soon as the client sends anything (the
		// hello) or closes.
		n, err := conn.Read(make([]byte, 64<<10))
		conn.Close()
		fmt.Printf("conn %d read %d (%v)\n", i, n, err)
	}
}

// startSquatter runs squat as uid nobody in a directory that user owns,
// and waits until it listens.
func startSquatter(t *testing.T) (p *proctest.Proc, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ebsquat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe, run := filepath.Join(dir, "squatter.test"), filepath.Join(dir, "run")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{os.Chmod(dir, 0o755), os.Chown(run, nobody, nobody)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(run, "eb.sock")
	p = proctest.Start(t, proctest.Cmd{Path: exe, Name: "squatter", Dir: dir, Env: []string{squatEnv + "=" + path},
		SysProcAttr: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}})
	if line := p.WaitLine(t, "listen", waitLimit); line != "listening" {
		t.Fatalf("squatter: %s", line)
	}
	return p, path
}

// TestBrokerUIDRefusesSquatter runs client commands against a listener of
// another uid squatting on the socket path: each must fail before sending
// anything (the agent token least of all), unless --broker-uid names that
// uid, and say whom it found and whom it wanted.
func TestBrokerUIDRefusesSquatter(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the squatting listener as another user (uid 65534)")
	}
	sq, sock := startSquatter(t)
	token := strings.Repeat("5ec4e7", 8)
	tokenFile := writeFile(t, "agent.token", token+"\n", 0o600)
	refused := fmt.Sprintf("eventbus: transport: untrusted broker at %s: it runs as uid %d (pid %d); ", sock, nobody, sq.Pid())
	tests := []struct {
		name string
		args []string // the command, then its arguments; --socket goes between
		want string   // the whole of stderr, or with sends, its start
		// sends: the broker is trusted, so the client sends its hello,
		// which the squatter answers by closing.
		sends bool
	}{
		{"pub --as agent", []string{"pub", "--as", "agent", "--token-file", tokenFile, "control.agent.policy", "x"}, refused + "want root (uid 0)\n", false},
		{"pub --broker-uid 0", []string{"pub", "--broker-uid", "0", "events.a", "x"}, refused + "want root (uid 0)\n", false},
		{"pub --broker-uid 1000", []string{"pub", "--broker-uid", "1000", "--as", "agent", "--token-file", tokenFile, "events.a", "x"}, refused + "want uid 1000 or root\n", false},
		{"sub", []string{"sub", "--broker-uid", "1000", "events.#"}, refused + "want uid 1000 or root\n", false},
		{"stats", []string{"stats", "--as", "agent", "--token-file", tokenFile}, refused + "want root (uid 0)\n", false},
		{"history", []string{"history", "--broker-uid", "0"}, refused + "want root (uid 0)\n", false},
		{"timeline", []string{"timeline", "r"}, refused + "want root (uid 0)\n", false},
		{"workflows", []string{"workflows", "--broker-uid", "1000"}, refused + "want uid 1000 or root\n", false},
		{"workflow", []string{"workflow", "r"}, refused + "want root (uid 0)\n", false},
		{"wait", []string{"wait", "--count", "1", "c"}, refused + "want root (uid 0)\n", false},
		{"pub --broker-uid 65534", []string{"pub", "--broker-uid", "65534", "--as", "agent", "--token-file", tokenFile, "events.a", "x"},
			"eventbus: handshake with " + sock, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{tt.args[0], "--socket", sock}, tt.args[1:]...)
			r := runCLI(t, "", args...)
			ok := r.stderr == tt.want
			if tt.sends {
				ok = strings.HasPrefix(r.stderr, tt.want)
			}
			if r.code != exitError || !ok {
				t.Errorf("eventbus %s = %d, stderr %q; want %d, %q", strings.Join(args, " "), r.code, r.stderr, exitError, tt.want)
			}
			if strings.Contains(r.stdout+r.stderr, token) {
				t.Error("the token appeared in the output")
			}
			// Each command connected once, and the squatter says what it got.
			line := sq.WaitLine(t, fmt.Sprintf("conn %d read ", i+1), waitLimit)
			var n int
			fmt.Sscanf(line, fmt.Sprintf("conn %d read %%d", i+1), &n)
			if sent := n > 0; sent != tt.sends {
				t.Errorf("squatter: %q; want it to have read %s", line, map[bool]string{false: "nothing", true: "the hello"}[tt.sends])
			}
		})
	}
}

func TestBrokerUIDUsage(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", "pub", "--socket", "/nonexistent/eb.sock", "--broker-uid", "nobody", "events.a", "x")
	if want := `invalid argument "nobody" for "--broker-uid"`; r.code != exitUsage || !strings.Contains(r.stderr, want) {
		t.Errorf("pub --broker-uid nobody = %d, stderr %q; want %d, an error containing %q", r.code, r.stderr, exitUsage, want)
	}
}
