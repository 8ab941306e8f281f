//go:build linux

package coord

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// oneLine returns err's text on one line.
func oneLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// dialHelper connects a helper's client, reconnection off: a broken
// connection shows as the helper's failure, never as a silent retry.
func dialHelper(path, name string, opts ...eventbus.ClientOption) (*eventbus.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return eventbus.Dial(ctx, path, append(opts, eventbus.WithName(name), eventbus.WithReconnect(false))...)
}

// untilStdinCloses returns once the test closes the helper's stdin
// (proctest.Proc.Stop), discarding what it reads.
func untilStdinCloses() { io.Copy(io.Discard, os.Stdin) }

// --- member: a queue group responder ---

// memberMain joins the queue group -group (round robin) as a responder on
// -pattern and answers each request with its own payload. It prints:
//
//	subscribed
//	task <payload> seq=<s> session=<x> pid=<p>
//	                               for each request, before replying
//	replyerr <payload> err=<err>   if Reply failed
//	unanswerable <payload>         for a message it may not answer
//	bye duplicates=<d> missed=<m>  when its stdin closes: the deliveries
//	                               its client dropped as resent copies, and
//	                               those the broker reported missed
//
// and exits when its stdin closes.
func memberMain(args []string) error {
	fs := flag.NewFlagSet("member", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	name := fs.String("name", "member", "client name")
	group := fs.String("group", "workers", "queue group")
	pattern := fs.String("pattern", "task.#", "pattern served")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dialHelper(*path, *name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: []string{*pattern}, Group: *group, Strategy: eventbus.RoundRobin,
		Responder: true, Handler: func(m *eventbus.Message) {
			if !m.CanReply() {
				say("unanswerable %q", m.Payload)
				return
			}
			say("task %s seq=%d session=%x pid=%d", m.Payload, m.Sequence, m.PublisherSession, m.PublisherPID)
			if err := m.Reply(context.Background(), m.Payload); err != nil {
				say("replyerr %s err=%s", m.Payload, oneLine(err))
			}
		}})
	if err != nil {
		c.Close()
		return err
	}
	say("subscribed")
	untilStdinCloses()
	say("bye duplicates=%d missed=%d", sub.Duplicates(), sub.Missed())
	return c.Close()
}

// --- requester ---

// allowance is how far the test lets the requester go: it issues the
// tasks below it, and waits for "allow N" lines on stdin for more.
type allowance struct {
	mu      sync.Mutex
	n       int
	closed  bool          // stdin ended
	changed chan struct{} // closed and replaced when n or closed changes
}

func newAllowance(n int) *allowance {
	a := &allowance{n: n, changed: make(chan struct{})}
	go a.read()
	return a
}

func (a *allowance) read() {
	s := bufio.NewScanner(os.Stdin)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "allow ")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			continue
		}
		a.mu.Lock()
		if n > a.n {
			a.n = n
			close(a.changed)
			a.changed = make(chan struct{})
		}
		a.mu.Unlock()
	}
	a.mu.Lock()
	a.closed = true
	close(a.changed)
	a.mu.Unlock()
}

// wait waits until task i may be issued.
func (a *allowance) wait(i int) error {
	for {
		a.mu.Lock()
		n, closed, ch := a.n, a.closed, a.changed
		a.mu.Unlock()
		switch {
		case i < n:
			return nil
		case closed:
			return fmt.Errorf("stdin closed while task %d waited (allowed %d)", i, n)
		}
		<-ch
	}
}

// printer writes the lines sent to it, each batch in one write, so that
// the requester's workers never wait on the pipe to the test.
func printer(lines <-chan string, done chan<- struct{}) {
	var buf []byte
	for l := range lines {
		buf = append(buf[:0], l...)
		buf = append(buf, '\n')
	drain:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break drain
				}
				buf = append(buf, l...)
				buf = append(buf, '\n')
			default:
				break drain
			}
		}
		os.Stdout.Write(buf)
	}
	close(done)
}

// requesterMain issues the requests 0..-n-1 on -topic, the payload of
// request i being i in decimal, -window of them in flight at a time, each
// with a -timeout deadline; it issues the tasks below -allow (all if 0)
// and waits for "allow N" lines on stdin for more. It prints:
//
//	ready
//	reply <i> pid=<responder pid> payload=<quoted reply>
//	fail <i> err=<err>
//	done replies=<r> fails=<f>
func requesterMain(args []string) error {
	fs := flag.NewFlagSet("requester", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	topicName := fs.String("topic", "task.run", "topic of the requests")
	n := fs.Int("n", 0, "requests")
	window := fs.Int("window", 100, "requests in flight")
	initial := fs.Int("allow", 0, "tasks allowed before any allow line (0: all)")
	timeout := fs.Duration("timeout", 30*time.Second, "each request's deadline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *initial <= 0 {
		*initial = *n
	}
	allowed := newAllowance(*initial)
	c, err := dialHelper(*path, "requester")
	if err != nil {
		return err
	}
	defer c.Close()
	lines := make(chan string, *n+16)
	printed := make(chan struct{})
	go printer(lines, printed)
	lines <- "ready"

	var mu sync.Mutex
	next, replies, fails := 0, 0, 0
	var firstErr error
	var wg sync.WaitGroup
	for range *window {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= *n {
					return
				}
				if err := allowed.wait(i); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				r, err := c.Request(ctx, *topicName, strconv.AppendInt(nil, int64(i), 10))
				cancel()
				mu.Lock()
				if err != nil {
					fails++
					lines <- fmt.Sprintf("fail %d err=%s", i, oneLine(err))
				} else {
					replies++
					lines <- fmt.Sprintf("reply %d pid=%d payload=%s", i, r.PublisherPID, strconv.Quote(string(r.Payload)))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	lines <- fmt.Sprintf("done replies=%d fails=%d", replies, fails)
	close(lines)
	<-printed
	return firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// --- silent: a responder that never answers ---

// silentMain subscribes as a responder on -pattern, in the queue group
// -group if set, and never replies. It
// prints "subscribed", then "got <payload> request_id=<id> can_reply=<b>"
// for each message, and exits when its stdin closes.
func silentMain(args []string) error {
	fs := flag.NewFlagSet("silent", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	pattern := fs.String("pattern", "slow.#", "pattern served")
	group := fs.String("group", "", "queue group (round robin), if any")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dialHelper(*path, "silent")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: []string{*pattern}, Group: *group, Strategy: eventbus.RoundRobin,
		Responder: true, Handler: func(m *eventbus.Message) {
			say("got %s request_id=%d can_reply=%t", m.Payload, m.RequestID, m.CanReply())
		}})
	if err != nil {
		c.Close()
		return err
	}
	say("subscribed")
	untilStdinCloses()
	return c.Close()
}

// --- echo: a responder the test paces ---

// echoMain subscribes as a responder on -pattern. For each request it
// prints "got <quoted payload> request_id=<id> can_reply=<b>", then waits
// for an "answer" line on stdin, replies with -secret, publishes "fence"
// on -fence from the same connection, and prints "replied err=<err>" and
// "fenced err=<err>". A subscriber that was routed the reply as a message
// would have it before the fence. It exits when its stdin closes.
func echoMain(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	pattern := fs.String("pattern", "svc.#", "pattern served")
	secret := fs.String("secret", "", "the reply payload")
	fence := fs.String("fence", "fence.echo", "topic of the fence published after each reply")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dialHelper(*path, "echo")
	if err != nil {
		return err
	}
	cmds := make(chan string)
	go func() {
		s := bufio.NewScanner(os.Stdin)
		for s.Scan() {
			cmds <- s.Text()
		}
		close(cmds)
	}()
	msgs := make(chan *eventbus.Message, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: []string{*pattern}, Responder: true, Handler: func(m *eventbus.Message) {
		msgs <- m // the handler must not block on the client: the main loop answers
	}})
	if err != nil {
		c.Close()
		return err
	}
	say("subscribed")
	for {
		var m *eventbus.Message
		select {
		case m = <-msgs:
		case _, ok := <-cmds:
			if !ok {
				return c.Close()
			}
			continue // a command with no request to answer
		}
		say("got %q request_id=%d can_reply=%t", m.Payload, m.RequestID, m.CanReply())
		if cmd, ok := <-cmds; !ok {
			return c.Close()
		} else if cmd != "answer" {
			return fmt.Errorf("command %q; want answer", cmd)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		say("replied err=%s", oneLine(m.Reply(rctx, []byte(*secret))))
		err := c.Publish(rctx, *fence, []byte("fence"))
		if err == nil {
			err = c.Flush(rctx)
		}
		rcancel()
		say("fenced err=%s", oneLine(err))
	}
}

// --- monitor: a third party subscribed to everything ---

// monitorMain watches everything on two connections: a client subscribed
// to "#", which tries to answer each request it sees (Reply and
// ReplyWithError), and a raw connection subscribed to "#" that prints
// every frame the broker sends it. It prints:
//
//	subscribed
//	msg topic=<t> request_id=<id> can_reply=<b> payload=<quoted>
//	monitor-reply err=<err>          the client's Reply to a request
//	monitor-reply-error err=<err>    its ReplyWithError
//	frame type=<TYPE> body=<quoted>  each frame on the raw connection
//
// and exits when its stdin closes. The test reads its whole output.
func monitorMain(args []string) error {
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dialHelper(*path, "monitor")
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, "#")
	if err != nil {
		return err
	}
	nc, err := transport.Dial(ctx, *path)
	if err != nil {
		return err
	}
	defer nc.Close()
	r := wire.NewReader(bufio.NewReaderSize(nc, 64<<10), 80<<20)
	if _, err := nc.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "monitor-raw"})); err != nil {
		return err
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := wire.ReadHelloOK(r); err != nil {
		return fmt.Errorf("raw handshake: %w", err)
	}
	if _, err := nc.Write(wire.AppendFrame(nil, wire.TypeSubscribe, &wire.Subscribe{RequestId: 1, SubscriptionId: 1, Patterns: []string{"#"}})); err != nil {
		return err
	}
	typ, body, err := r.ReadFrame()
	if err != nil || typ != wire.TypeOK {
		return fmt.Errorf("raw subscribe: %v frame %q, %v", typ, body, err)
	}
	nc.SetReadDeadline(time.Time{})
	say("subscribed")

	rawDone := make(chan error, 1)
	go func() {
		for {
			typ, body, err := r.ReadFrame()
			if err != nil {
				rawDone <- err
				return
			}
			say("frame type=%v body=%q", typ, body)
		}
	}()
	stdinClosed := make(chan struct{})
	go func() { untilStdinCloses(); close(stdinClosed) }()
	for {
		select {
		case m, ok := <-sub.C:
			if !ok {
				return errors.New("subscription closed")
			}
			say("msg topic=%s request_id=%d can_reply=%t payload=%q", m.Topic, m.RequestID, m.CanReply(), m.Payload)
			if m.RequestID != 0 {
				rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
				say("monitor-reply err=%s", oneLine(m.Reply(rctx, []byte("forged by the monitor"))))
				say("monitor-reply-error err=%s", oneLine(m.ReplyWithError(rctx,
					&eventbus.ReplyError{Code: "forged", Message: "forged by the monitor", Category: "client"})))
				rcancel()
			}
		case err := <-rawDone:
			return fmt.Errorf("raw connection: %w", err)
		case <-stdinClosed:
			return nil
		}
	}
}
