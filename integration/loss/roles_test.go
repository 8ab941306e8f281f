//go:build linux

package loss

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"daemoneye.dev/eventbus"
)

// streamTopic carries the numbered stream: message i's payload is i in
// decimal (maybe padded after a space), and it is its publisher's publish
// number i+1 (Message.Sequence).
const streamTopic = "events.process.lifecycle"

// clientBackoff is the helpers' reconnect delay: short, so that the tests
// wait on reconnects for little longer than the restart takes.
var clientBackoff = []eventbus.ClientOption{eventbus.WithBackoff(5*time.Millisecond, 100*time.Millisecond)}

// oneLine returns err's text on one line.
func oneLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// --- subscriber ---

// received is what a subscriber got of the stream of n numbers.
type received struct {
	seen                     []bool
	unique, dups, bad        uint64
	missed, seqBad           uint64
	max                      int // the highest number received, -1 before any
	firstSeqBad              string
	sessions                 map[uint64]bool
	pids                     map[int]bool
	progressEvery, nextPrint uint64
}

func newReceived(n, every int) *received {
	return &received{seen: make([]bool, n), max: -1, sessions: map[uint64]bool{}, pids: map[int]bool{},
		progressEvery: uint64(every), nextPrint: uint64(every)}
}

// add records m, and prints "recv <max>" each progressEvery new numbers:
// the publisher's pace follows the highest number received, which keeps
// growing past any hole a broker's death left.
func (r *received) add(m *eventbus.Message) {
	r.missed += m.Missed
	r.sessions[m.PublisherSession] = true
	r.pids[m.PublisherPID] = true
	digits, _, _ := strings.Cut(string(m.Payload), " ") // the number, maybe padded after a space
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 || i >= len(r.seen) {
		r.bad++
		return
	}
	if m.Sequence != uint64(i)+1 {
		if r.seqBad == 0 {
			r.firstSeqBad = fmt.Sprintf("%d:%d", i, m.Sequence)
		}
		r.seqBad++
	}
	if r.seen[i] {
		r.dups++
		return
	}
	r.seen[i] = true
	r.unique++
	r.max = max(r.max, i)
	if r.unique >= r.nextPrint {
		say("recv %d", r.max)
		r.nextPrint += r.progressEvery
	}
}

// digest is the line the test checks: counts, then the numbers received
// as ranges ("0-41999,42010-199999"; "-" for none).
func (r *received) digest(sub *eventbus.Subscription, why string) string {
	var ranges []string
	for i := 0; i < len(r.seen); {
		if !r.seen[i] {
			i++
			continue
		}
		j := i
		for j+1 < len(r.seen) && r.seen[j+1] {
			j++
		}
		ranges = append(ranges, fmt.Sprintf("%d-%d", i, j))
		i = j + 1
	}
	if len(ranges) == 0 {
		ranges = []string{"-"}
	}
	return fmt.Sprintf("digest why=%s unique=%d dups=%d missed=%d bad=%d seqbad=%d firstseqbad=%s sessions=%d pids=%d suppressed=%d ranges=%s",
		why, r.unique, r.dups, r.missed, r.bad, r.seqBad, cmp.Or(r.firstSeqBad, "-"), len(r.sessions), len(r.pids),
		sub.Duplicates(), strings.Join(ranges, ","))
}

// subMain subscribes to streamTopic and records the numbers 0..-n-1 it
// receives. It prints:
//
//	subscribed
//	recv <max>            each -progress new numbers, max the highest yet
//	gap restarted=<bool> prev=<epoch> epoch=<epoch> down=<d>
//	                      for each gap notice, once a ping proved the broker
//	                      processed the restored subscription
//	digest ...            (received.digest) when the subscription ends
//	                      (the connection died, -reconnect=false), or on
//	                      SIGTERM after a ping: everything the broker
//	                      confirmed to publishers before the SIGTERM is in
//	                      this process by then
func subMain(args []string) error {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	n := fs.Int("n", 0, "the stream's length")
	reconnect := fs.Bool("reconnect", true, "reconnect when the connection fails")
	every := fs.Int("progress", 1000, "new numbers between progress lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := eventbus.Dial(ctx, *path, append(clientBackoff, eventbus.WithName("sub"), eventbus.WithReconnect(*reconnect),
		eventbus.WithChannelSize(1<<18))...) // more than the stream: this client never drops one
	if err != nil {
		return err
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, streamTopic)
	if err != nil {
		return err
	}
	say("subscribed")
	r := newReceived(*n, *every)
	for {
		select {
		case m, ok := <-sub.C:
			if !ok {
				say("%s", r.digest(sub, "closed"))
				return nil
			}
			r.add(m)
		case g := <-sub.Gaps():
			pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.Ping(pctx)
			pcancel()
			if err != nil {
				return fmt.Errorf("ping after the gap notice %v: %w", g, err)
			}
			say("gap restarted=%t prev=%x epoch=%x down=%v", g.BrokerRestarted, g.PrevEpoch, g.Epoch, g.Down)
		case <-sig:
			pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.Ping(pctx)
			pcancel()
			if err != nil {
				return fmt.Errorf("ping before the digest: %w", err)
			}
			for drained := false; !drained; {
				select {
				case m, ok := <-sub.C:
					if !ok {
						drained = true
						break
					}
					r.add(m)
				default:
					drained = true
				}
			}
			say("%s", r.digest(sub, "sigterm"))
			return nil
		}
	}
}

// --- publisher ---

// allowance is how far the test lets a publisher go: it publishes the
// numbers below it, and waits for "allow N" lines on stdin for more.
type allowance struct {
	mu      sync.Mutex
	n       int
	closed  bool          // stdin ended
	changed chan struct{} // closed and replaced when n or closed changes
}

func newAllowance(n int) *allowance {
	if n <= 0 {
		n = math.MaxInt
	}
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

// wait waits until number i may be published.
func (a *allowance) wait(i int) error {
	for {
		a.mu.Lock()
		n, closed, ch := a.n, a.closed, a.changed
		a.mu.Unlock()
		switch {
		case i < n:
			return nil
		case closed:
			return fmt.Errorf("stdin closed while waiting to publish #%d (allowed %d)", i, n)
		}
		<-ch
	}
}

// pubMain publishes the numbers 0..-n-1 on streamTopic, each once the test
// allows it (allowance; -allow is the initial allowance, 0 for all). A
// publish that fails stops the stream, unless -retry is set and it failed
// with ErrDisconnected: the message was not taken, so it is tried again
// after a short backoff. Then it flushes and closes. It prints:
//
//	ready
//	disconnected <err> | reconnected      as the client's handlers are called
//	published accepted=<n> never=<n> stopped=<i|-1> retries=<r> disconnected=<bool> closed=<bool> err=<err>
//	flush ok | flush lost count=<c> first=<f> last=<l> err=<err> | flush err <err>
//	close ok | close lost ... | close err ...
//	done
//
// accepted counts the publishes that returned nil: they are numbers
// 0..accepted-1, session sequences 1..accepted; never counts the numbers
// not taken. stopped is the number whose publish failed, -1 if none did.
func pubMain(args []string) error {
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	n := fs.Int("n", 0, "the stream's length")
	reconnect := fs.Bool("reconnect", true, "reconnect when the connection fails")
	retry := fs.Bool("retry", false, "retry a publish that failed with ErrDisconnected")
	retryFor := fs.Duration("retry-for", 30*time.Second, "give up a publish still disconnected after this long")
	initial := fs.Int("allow", 0, "numbers allowed before any allow line (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	allowed := newAllowance(*initial)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := eventbus.Dial(ctx, *path, append(clientBackoff, eventbus.WithName("pub"), eventbus.WithReconnect(*reconnect),
		eventbus.WithDisconnectHandler(func(err error) { say("disconnected %s", oneLine(err)) }),
		eventbus.WithReconnectHandler(func() { say("reconnected") }))...)
	if err != nil {
		return err
	}
	say("ready")
	accepted, retries, stopped := 0, 0, -1
	var stopErr error
	for i := 0; i < *n && stopErr == nil; i++ {
		if err := allowed.wait(i); err != nil {
			c.Close()
			return err
		}
		giveUp := time.Now().Add(*retryFor)
		for {
			err := c.Publish(context.Background(), streamTopic, strconv.AppendInt(nil, int64(i), 10))
			if err == nil {
				accepted++
				break
			}
			if *retry && errors.Is(err, eventbus.ErrDisconnected) && time.Now().Before(giveUp) {
				retries++
				time.Sleep(2 * time.Millisecond) // the client reconnects on its own; this only paces the retries
				continue
			}
			stopped, stopErr = i, err
			break
		}
	}
	say("published accepted=%d never=%d stopped=%d retries=%d disconnected=%t closed=%t err=%s", accepted, *n-accepted, stopped, retries,
		errors.Is(stopErr, eventbus.ErrDisconnected), errors.Is(stopErr, eventbus.ErrClientClosed), oneLine(stopErr))
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	say("flush %s", outcome(c.Flush(fctx)))
	say("close %s", outcome(c.Close()))
	say("done")
	return nil
}

// outcome describes what Flush or Close returned: "ok", "lost count=...
// first=... last=... err=..." for a *LostError (alone or joined with
// refusals), or "err ...".
func outcome(err error) string {
	var lost *eventbus.LostError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &lost):
		return fmt.Sprintf("lost count=%d first=%d last=%d is=%t err=%s", lost.Count, lost.First, lost.Last,
			errors.Is(err, eventbus.ErrPublishLost), oneLine(err))
	}
	return "err " + oneLine(err)
}
