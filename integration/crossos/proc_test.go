package crossos

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds every wait for a helper's output or exit: a failure
// bound, not a delay. Wine starts processes slowly, so it is generous.
const waitTimeout = 60 * time.Second

// proc is a helper process: the test binary run in one role. A goroutine
// reads its stdout line by line, so it never stalls on a full pipe.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer
	notify chan struct{} // capacity 1: new output or exit
	done   chan struct{} // closed once the process has been waited for

	mu      sync.Mutex
	lines   []string
	exited  bool
	waitErr error
}

// start runs the test binary as role with args. When the test ends the
// process's stdin is closed (a broker's signal to shut down) and it is
// waited for, and killed if it has not exited by then.
func start(t *testing.T, name, role string, env []string, args ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, notify: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.Command(exe, args...)
	// The race detector sleeps a second at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	p.cmd.Env = append(append(os.Environ(), envRole+"="+role, "GORACE="+gorace), env...)
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go p.read(stdout)
	t.Cleanup(p.stop)
	return p
}

func (p *proc) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		p.mu.Unlock()
		p.wake()
	}
	err := p.cmd.Wait() // after stdout's EOF, as os/exec requires
	p.mu.Lock()
	p.exited, p.waitErr = true, err
	p.mu.Unlock()
	close(p.done)
	p.wake()
}

func (p *proc) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// stop closes stdin and waits for the process, killing it after
// waitTimeout.
func (p *proc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		p.t.Errorf("%s did not exit within %v of its stdin closing; killing it", p.name, waitTimeout)
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Lines returns every line printed so far.
func (p *proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitLine waits for a line starting with prefix and returns it. It fails
// the test if the process exits first or nothing comes within waitTimeout.
func (p *proc) waitLine(prefix string) string {
	p.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		lines, exited, err := p.lines, p.exited, p.waitErr
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if strings.HasPrefix(lines[seen], prefix) {
				return lines[seen]
			}
		}
		if exited {
			p.t.Fatalf("%s exited (%v) before printing %q; stdout:\n%s\nstderr:\n%s",
				p.name, err, prefix, strings.Join(lines, "\n"), p.stderr.String())
		}
		select {
		case <-p.notify:
		case <-deadline.C:
			p.t.Fatalf("%s printed no %q line within %v; stdout:\n%s\nstderr:\n%s",
				p.name, prefix, waitTimeout, strings.Join(lines, "\n"), p.stderr.String())
		}
	}
}

// wait waits for the process to exit and fails the test unless it exited
// with status 0.
func (p *proc) wait() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		p.t.Fatalf("%s did not exit within %v; stdout:\n%s", p.name, waitTimeout, strings.Join(p.Lines(), "\n"))
	}
	if p.waitErr != nil {
		p.t.Fatalf("%s: %v; stderr:\n%s", p.name, p.waitErr, p.stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe to write from os/exec's copying
// goroutine while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
