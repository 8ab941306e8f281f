package proctest_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
)

func TestMain(m *testing.M) {
	if role := proctest.Role(); role != "" {
		os.Exit(helper(role, os.Args[1:]))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(proctest.Exit))
}

// helper runs a role:
//
//	echo ARG...  prints "env=$PROCTEST_X", then each ARG on a line, the
//	             last unterminated, and "to stderr" on stderr
//	exit3        prints "bad" on stderr and exits 3
//	stdin        prints "ready", reads stdin to its end, prints "bye"
//	hang         prints "ready" and runs until killed
func helper(role string, args []string) int {
	switch role {
	case "echo":
		fmt.Printf("env=%s\n%s", os.Getenv("PROCTEST_X"), strings.Join(args, "\n"))
		fmt.Fprintln(os.Stderr, "to stderr")
	case "exit3":
		fmt.Fprintln(os.Stderr, "bad")
		return 3
	case "stdin":
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		fmt.Println("bye")
	case "hang":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt) // keeps the runtime from seeing a deadlock
		fmt.Println("ready")
		<-sig
	default:
		fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
		return 2
	}
	return 0
}

// TestOutput checks what a helper printed reaches OnLine, line by line
// and before Stdout has it, and Stdout and Stderr as written; and that
// Env reaches the process.
func TestOutput(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	p := proctest.Start(t, proctest.Cmd{Role: "echo", Args: []string{"a", "b", "tail"}, Env: []string{"PROCTEST_X=42"},
		OnLine: func(l string) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, l)
		}})
	p.WaitLine(t, "b", testutil.Timeout)
	mu.Lock()
	sawB := slices.Contains(lines, "b")
	mu.Unlock()
	if !sawB {
		t.Errorf("Stdout had line b before OnLine was called with it")
	}
	p.WaitOK(t, testutil.Timeout)
	if want := []string{"env=42", "a", "b", "tail"}; !slices.Equal(lines, want) {
		t.Errorf("OnLine got %q; want %q", lines, want)
	}
	if got, want := p.Stdout.String(), "env=42\na\nb\ntail"; got != want {
		t.Errorf("Stdout = %q; want %q", got, want)
	}
	if got := p.Stderr.String(); got != "to stderr\n" {
		t.Errorf("Stderr = %q; want %q", got, "to stderr\n")
	}
	if p.ExitCode() != 0 || p.Err() != nil || p.Name != "echo" {
		t.Errorf("exit code %d, Err %v, Name %q; want 0, nil, the role", p.ExitCode(), p.Err(), p.Name)
	}
}

func TestRunExitStatus(t *testing.T) {
	p := proctest.Run(t, proctest.Cmd{Role: "exit3", Name: "three"}, testutil.Timeout)
	var ee *exec.ExitError
	if p.ExitCode() != 3 || !errors.As(p.Err(), &ee) || p.Stderr.String() != "bad\n" {
		t.Errorf("Run = exit %d, Err %v, stderr %q; want 3, an *exec.ExitError, %q", p.ExitCode(), p.Err(), p.Stderr.String(), "bad\n")
	}
	if msg := testutil.Failure(t, func(tb testing.TB) { p.WaitOK(tb, testutil.Timeout) }); !strings.Contains(msg, "three") || !strings.Contains(msg, "bad") {
		t.Errorf("WaitOK on exit status 3 failed with %q; want the process named and its stderr", msg)
	}
}

// TestWaitFailsOnExit: a wait for output a process exits without printing
// fails then, not at its timeout, naming the process and what it printed.
func TestWaitFailsOnExit(t *testing.T) {
	p := proctest.Start(t, proctest.Cmd{Role: "echo", Name: "echoer", Args: []string{"x"}})
	for name, wait := range map[string]func(testing.TB){
		"WaitLine": func(tb testing.TB) { p.WaitLine(tb, "never", testutil.Timeout) },
		"Await":    func(tb testing.TB) { p.Await(tb, testutil.Timeout, "say never", func() bool { return false }) },
	} {
		msg := testutil.Failure(t, wait)
		if !strings.Contains(msg, "echoer") || !strings.Contains(msg, "exited") || !strings.Contains(msg, "to stderr") {
			t.Errorf("%s failed with %q; want the process named, its exit and its stderr", name, msg)
		}
	}
}

// TestStop: a process given Grace exits by itself once its stdin closes;
// one without is killed, and one that outlasts its Grace is killed and
// fails the test.
func TestStop(t *testing.T) {
	tests := []struct {
		role    string
		grace   time.Duration
		wantBye bool   // exited by itself once its stdin closed
		wantErr string // what Stop fails the test with
	}{
		{role: "stdin", grace: testutil.Timeout, wantBye: true},
		{role: "hang"},
		{role: "hang", grace: 100 * time.Millisecond, wantErr: "did not exit within 100ms of its stdin closing"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s grace %v", tt.role, tt.grace), func(t *testing.T) {
			p := proctest.Start(t, proctest.Cmd{Role: tt.role, Grace: tt.grace})
			p.WaitLine(t, "ready", testutil.Timeout)
			if p.Exited() {
				t.Fatal("exited before Stop")
			}
			msg := testutil.Failure(t, p.Stop)
			if !p.Exited() {
				t.Fatal("still running after Stop")
			}
			if tt.wantErr == "" && msg != "" || !strings.Contains(msg, tt.wantErr) {
				t.Errorf("Stop failed with %q; want %q", msg, tt.wantErr)
			}
			if bye := slices.Contains(p.Stdout.Lines(), "bye"); bye != tt.wantBye || (p.Err() == nil) != tt.wantBye {
				t.Errorf("after Stop: printed bye %t, Err %v; want bye %t, killed %t", bye, p.Err(), tt.wantBye, !tt.wantBye)
			}
		})
	}
}

// TestBinary runs the eventbus binary Binary built.
func TestBinary(t *testing.T) {
	p := proctest.Run(t, proctest.Cmd{Path: proctest.Binary(t), Args: []string{"version"}}, testutil.Timeout)
	if p.ExitCode() != 0 || !strings.HasPrefix(p.Stdout.String(), "eventbus ") {
		t.Errorf("eventbus version = %d, %q; want 0 and the version", p.ExitCode(), p.Stdout.String())
	}
	if again := proctest.Binary(t); again != p.Cmd.Path {
		t.Errorf("Binary built %s, then %s; want one build", p.Cmd.Path, again)
	}
}
