// Package proctest runs real processes for tests: the eventbus binary,
// built once per test binary (Binary), and the test binary itself
// re-executed in a helper role (Cmd.Role, Role). Each process's output is
// captured in testutil.Buffers that a test waits on, and the process is
// stopped and waited for when the test ends.
//
// Every wait has a timeout that is a failure bound, never a delay: it
// ends as soon as what it waits for happens.
package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/internal/testutil"
)

// RoleEnv is the environment variable that tells a re-executed test binary
// which helper role to run; see Role.
const RoleEnv = "EVENTBUS_TEST_ROLE"

// KillTimeout bounds the wait for a killed process to be reaped.
const KillTimeout = 10 * time.Second

// Role returns the helper role this process was started in, "" when it
// runs the tests. TestMain calls it first, or RunRole, which dispatches on
// it.
func Role() string { return os.Getenv(RoleEnv) }

// Cmd is a process to start.
type Cmd struct {
	// Path is the executable; empty means the test binary itself, which
	// Role then makes run a helper.
	Path string
	// Args are the arguments, after the executable's name.
	Args []string
	// Role, if set, is passed in RoleEnv.
	Role string
	// Name names the process in failure messages; default Role, else the
	// executable's base name.
	Name string
	// Env is added to the test's environment.
	Env []string
	// Dir is the working directory; empty means the test's.
	Dir string
	// Stdin is the process's standard input. If nil, Proc.Stdin is a pipe
	// to it, closed when the process is stopped.
	Stdin io.Reader
	// SysProcAttr is passed to os/exec. On Linux Pdeathsig defaults to
	// SIGKILL, so a helper dies with a test binary that crashes.
	SysProcAttr *syscall.SysProcAttr
	// OnLine, if set, is called with each line of standard output (without
	// its newline) before the line is added to Proc.Stdout, so a wait on
	// Stdout sees whatever OnLine recorded.
	OnLine func(line string)
	// Grace is how long the process has to exit once its stdin is closed
	// at Stop before it is killed, and the test fails; 0 kills it at once.
	Grace time.Duration
}

// Proc is a started process.
type Proc struct {
	// Name is Cmd.Name or its default.
	Name string
	// Cmd is the running command; read Cmd.ProcessState only once Exited.
	Cmd *exec.Cmd
	// Stdin is a pipe to the process's standard input, nil if Cmd.Stdin
	// was set.
	Stdin io.WriteCloser
	// Stdout and Stderr hold everything the process wrote to each; they
	// are closed once it has exited.
	Stdout, Stderr *testutil.Buffer

	grace time.Duration
	done  chan struct{} // closed once waited for and its output complete
	err   error         // from exec.Cmd.Wait; read after done
}

// Start starts c. When the test ends the process is stopped (Stop) and,
// if the test failed, the end of its stderr is logged.
func Start(t testing.TB, c Cmd) *Proc {
	t.Helper()
	exe := c.Path
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	name := c.Name
	if name == "" {
		name = c.Role
	}
	if name == "" {
		name = filepath.Base(exe)
	}
	p := &Proc{Name: name, Cmd: exec.Command(exe, c.Args...), Stdout: new(testutil.Buffer), Stderr: new(testutil.Buffer),
		grace: c.Grace, done: make(chan struct{})}
	// The race runtime sleeps a second at exit unless told not to.
	env := append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if c.Role != "" {
		env = append(env, RoleEnv+"="+c.Role)
	}
	p.Cmd.Env = append(env, c.Env...)
	p.Cmd.Dir = c.Dir
	p.Cmd.SysProcAttr = sysProcAttr(c.SysProcAttr)
	var lines *lineWriter
	if c.OnLine != nil {
		lines = &lineWriter{onLine: c.OnLine, out: p.Stdout}
		p.Cmd.Stdout = lines
	} else {
		p.Cmd.Stdout = p.Stdout
	}
	p.Cmd.Stderr = p.Stderr
	if c.Stdin != nil {
		p.Cmd.Stdin = c.Stdin
	} else {
		var err error
		if p.Stdin, err = p.Cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s (%s %s): %v", name, exe, strings.Join(c.Args, " "), err)
	}
	go func() {
		// Wait returns once the output is copied; then nothing more comes.
		err := p.Cmd.Wait()
		if lines != nil {
			lines.flush()
		}
		p.err = err
		// Exited before the buffers close: a wait that ends because its
		// buffer closed must find the process exited.
		close(p.done)
		p.Stdout.Close()
		p.Stderr.Close()
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if tail := p.Stderr.Tail(4000); t.Failed() && tail != "" {
			t.Logf("%s (pid %d) stderr:\n%s", p.Name, p.Pid(), tail)
		}
	})
	return p
}

// Run starts c, with empty standard input unless c.Stdin is set, and
// waits for it to exit; it fails the test if that takes over timeout.
func Run(t testing.TB, c Cmd, timeout time.Duration) *Proc {
	t.Helper()
	if c.Stdin == nil {
		c.Stdin = strings.NewReader("")
	}
	p := Start(t, c)
	p.Wait(t, timeout)
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed once the process has exited and all its output is in
// Stdout and Stderr.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether Done is closed.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is exec.Cmd.Wait's error once the process has exited (nil for exit
// status 0), and nil before.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// ExitCode is the exit status once the process has exited, and -1 before
// or if a signal ended it.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Wait waits for the process to exit and returns its ExitCode; it fails
// the test if that takes over timeout.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v%s", p.describe(), timeout, p.output())
		return -1
	}
}

// WaitOK is Wait, and fails the test unless the exit status is 0.
func (p *Proc) WaitOK(t testing.TB, timeout time.Duration) {
	t.Helper()
	p.Wait(t, timeout)
	if p.err != nil {
		t.Fatalf("%s failed%s", p.describe(), p.output())
	}
}

// Signal sends sig to the process, failing the test if that fails.
func (p *Proc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.describe(), err)
	}
}

// Await waits until cond holds, checking it now and after each write to
// Stdout; it fails the test, saying it waited to do what, if the process
// exits first or timeout passes.
func (p *Proc) Await(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := p.Stdout.Await(timeout, cond); err != nil {
		p.failWait(t, what, timeout, err)
	}
}

// WaitLine waits for a line of stdout starting with prefix and returns the
// first such line; see Await for how it fails.
func (p *Proc) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	line, err := p.Stdout.FindLine(prefix, timeout)
	if err != nil {
		p.failWait(t, fmt.Sprintf("print a line starting %q", prefix), timeout, err)
	}
	return line
}

func (p *Proc) failWait(t testing.TB, what string, timeout time.Duration, err error) {
	t.Helper()
	if errors.Is(err, testutil.ErrBufferClosed) {
		t.Fatalf("%s before it would %s%s", p.describe(), what, p.output())
	}
	t.Fatalf("timed out after %v waiting for %s to %s%s", timeout, p.describe(), what, p.output())
}

// Stop closes the process's stdin (the crossos helpers' signal to shut
// down), gives it Cmd.Grace to exit, then kills it and waits for it.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if p.Stdin != nil {
		p.Stdin.Close()
	}
	if p.grace > 0 {
		select {
		case <-p.done:
			return
		case <-time.After(p.grace):
			t.Errorf("%s did not exit within %v of its stdin closing; killing it", p.describe(), p.grace)
		}
	}
	if !p.Exited() {
		p.Cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(KillTimeout):
		t.Errorf("%s did not exit %v after it was killed", p.describe(), KillTimeout)
	}
}

// describe names the process and, once it has exited, how.
func (p *Proc) describe() string {
	if p.Exited() {
		return fmt.Sprintf("%s (pid %d) exited (%v)", p.Name, p.Pid(), p.Cmd.ProcessState)
	}
	return fmt.Sprintf("%s (pid %d)", p.Name, p.Pid())
}

// output is the end of the process's stdout and stderr, for failure
// messages.
func (p *Proc) output() string {
	return fmt.Sprintf("; stdout:\n%s\nstderr:\n%s", p.Stdout.Tail(2000), p.Stderr.Tail(2000))
}

// lineWriter hands each complete line to onLine, then writes the bytes
// to out. os/exec calls Write from one goroutine.
type lineWriter struct {
	onLine  func(string)
	out     io.Writer
	partial []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	rest := b
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if len(w.partial) > 0 {
			w.onLine(string(append(w.partial, rest[:i]...)))
			w.partial = w.partial[:0]
		} else {
			w.onLine(string(rest[:i]))
		}
		rest = rest[i+1:]
	}
	w.partial = append(w.partial, rest...)
	return w.out.Write(b)
}

// flush hands on an unterminated last line.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.onLine(string(w.partial))
		w.partial = nil
	}
}
