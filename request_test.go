package eventbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/internal/testutil"
)

// serve answers every request on patterns with the handler's result, in
// group (if not "") with strategy.
func serve(t *testing.T, c *Client, group string, strategy GroupStrategy, handle func(*Message) ([]byte, *ReplyError), patterns ...string) *Subscription {
	t.Helper()
	s, err := c.SubscribeWith(testCtx(t), SubscribeOptions{Patterns: patterns, Group: group, Strategy: strategy, Responder: true,
		Handler: func(m *Message) {
			if !m.CanReply() {
				return
			}
			out, rerr := handle(m)
			var err error
			if rerr != nil {
				err = m.ReplyWithError(context.Background(), rerr)
			} else {
				err = m.Reply(context.Background(), out)
			}
			if err != nil && !errors.Is(err, ErrClientClosed) {
				t.Errorf("reply: %v", err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRequestReply(t *testing.T) {
	b, path := startBroker(t, broker.Config{})
	responder := dial(t, path, WithName("responder"))
	serve(t, responder, "", RoundRobin, func(m *Message) ([]byte, *ReplyError) {
		if string(m.Payload) == "bad" {
			return nil, &ReplyError{Code: "bad_input", Message: "cannot do bad", Category: "client"}
		}
		return append([]byte("re: "), m.Payload...), nil
	}, "svc.#")
	// A monitor sees requests as plain messages and cannot answer them.
	monitor := dial(t, path)
	ms := subscribe(t, monitor, "#")
	c := dial(t, path)

	reply, err := c.Request(testCtx(t), "svc.echo", []byte("hello"))
	if err != nil || string(reply.Payload) != "re: hello" {
		t.Fatalf("Request = %v, %v; want re: hello", reply, err)
	}
	if reply.PublisherPID == 0 {
		t.Errorf("reply carries no responder pid")
	}
	m := recvMsg(t, ms)
	if m.RequestID == 0 || m.CanReply() {
		t.Errorf("monitor got the request with RequestID %d, CanReply %v; want a request it may not answer", m.RequestID, m.CanReply())
	}
	if err := m.Reply(testCtx(t), []byte("spoof")); err == nil {
		t.Errorf("monitor's Reply = nil; want refused")
	}

	var re *ReplyError
	if _, err := c.Request(testCtx(t), "svc.echo", []byte("bad")); !errors.As(err, &re) || re.Code != "bad_input" || re.Category != "client" {
		t.Errorf("Request answered with an error = %v; want *ReplyError bad_input", err)
	}

	start := time.Now()
	if _, err := c.Request(testCtx(t), "nobody.here", nil); !errors.Is(err, ErrNoResponders) {
		t.Errorf("Request to nobody = %v; want %v", err, ErrNoResponders)
	}
	t.Logf("no responders after %v", time.Since(start))

	// A responder that never answers: the request ends at its deadline.
	silent := dial(t, path)
	if _, err := silent.SubscribeWith(testCtx(t), SubscribeOptions{Patterns: []string{"slow.#"}, Responder: true, Handler: func(*Message) {}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c.Request(ctx, "slow.op", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Request to a silent responder = %v; want %v", err, context.DeadlineExceeded)
	}
	if late := time.Since(start) - 200*time.Millisecond; late > 50*time.Millisecond {
		t.Errorf("Request returned %v after its deadline", late)
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Errorf("Flush after the requests = %v; want nil", err)
	}
	if r := b.Stats().Requests; r.Replies != 2 || r.NoResponders != 1 || r.Pending != 1 {
		t.Errorf("request stats %+v; want 2 replies, 1 without responders, 1 pending (the silent one's)", r)
	}
}

// TestGroupEachOnce: each request to a queue group is answered by exactly
// one member, for every strategy; when a member goes away holding
// requests, another member gets each of them once.
func TestGroupEachOnce(t *testing.T) {
	for _, st := range []GroupStrategy{RoundRobin, LeastLoaded, FirstAvailable, Random} {
		t.Run(fmt.Sprint(st), func(t *testing.T) {
			_, path := startBroker(t, broker.Config{})
			var mu sync.Mutex
			handled := map[string]int{}
			byMember := map[string]int{}
			for i := range 3 {
				name := "member" + strconv.Itoa(i)
				m := dial(t, path, WithName(name))
				serve(t, m, "workers", st, func(msg *Message) ([]byte, *ReplyError) {
					mu.Lock()
					handled[string(msg.Payload)]++
					byMember[name]++
					mu.Unlock()
					return msg.Payload, nil
				}, "task.#")
			}
			c := dial(t, path)
			const n = 300
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := strconv.Itoa(i)
					r, err := c.Request(testCtx(t), "task.x", []byte(p))
					if err == nil && string(r.Payload) != p {
						err = fmt.Errorf("reply %q to task %s", r.Payload, p)
					}
					if err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range n {
				if got := handled[strconv.Itoa(i)]; got != 1 {
					t.Errorf("task %d handled %d times; want 1", i, got)
				}
			}
			if st == RoundRobin {
				for name, k := range byMember {
					if k != n/3 {
						t.Errorf("round robin: %s handled %d of %d; want %d", name, k, n, n/3)
					}
				}
			}
		})
	}
}

func TestGroupRedelivery(t *testing.T) {
	_, path := startBroker(t, broker.Config{})
	// The first member takes requests and never answers, then goes away.
	holder := dial(t, path, WithReconnect(false))
	got := make(chan struct{}, 10)
	if _, err := holder.SubscribeWith(testCtx(t), SubscribeOptions{Patterns: []string{"task.#"}, Group: "w", Strategy: FirstAvailable,
		Responder: true, Handler: func(*Message) { got <- struct{}{} }}); err != nil {
		t.Fatal(err)
	}
	other := dial(t, path)
	answered := make(chan string, 10)
	serve(t, other, "w", FirstAvailable, func(m *Message) ([]byte, *ReplyError) {
		answered <- string(m.Payload)
		return []byte("done"), nil
	}, "task.#")
	c := dial(t, path)
	result := make(chan error, 1)
	go func() {
		r, err := c.Request(testCtx(t), "task.a", []byte("t1"))
		if err == nil && string(r.Payload) != "done" {
			err = fmt.Errorf("reply %q", r.Payload)
		}
		result <- err
	}()
	select {
	case <-got:
	case <-time.After(testutil.Timeout):
		t.Fatal("the first member never got the request")
	}
	holder.Close()
	if err := <-result; err != nil {
		t.Fatalf("Request whose holder went away = %v; want the other member's reply", err)
	}
	if p := <-answered; p != "t1" {
		t.Errorf("other member answered %q", p)
	}
	select {
	case p := <-answered:
		t.Errorf("the request was answered twice (%q)", p)
	default:
	}
}

func TestGroupStrategyConflict(t *testing.T) {
	_, path := startBroker(t, broker.Config{})
	a, b := dial(t, path), dial(t, path)
	if _, err := a.SubscribeWith(testCtx(t), SubscribeOptions{Patterns: []string{"x.#"}, Group: "g", Strategy: Random}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SubscribeWith(testCtx(t), SubscribeOptions{Patterns: []string{"x.#"}, Group: "g", Strategy: LeastLoaded}); !errors.Is(err, ErrInvalidPattern) {
		t.Errorf("joining a random group as least-loaded = %v; want %v", err, ErrInvalidPattern)
	}
}

// TestRefusedRequest: a request the broker refuses (here: the policy does
// not let an anonymous peer publish the topic) fails at once with the
// refusal, not at its deadline.
func TestRefusedRequest(t *testing.T) {
	_, path := startBroker(t, broker.Config{Policy: acl.Default(uint32(os.Geteuid()))})
	c := dial(t, path)
	start := time.Now()
	if _, err := c.Request(testCtx(t), "control.collector.task.process", nil); !errors.Is(err, ErrForbidden) {
		t.Fatalf("anonymous request on a restricted topic = %v; want %v", err, ErrForbidden)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v", d)
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Errorf("Flush = %v; want nil: the refusal was the request's answer", err)
	}
}

// TestGroupResendOnce: publishes resent after their publisher reconnected
// reach the queue group once in all: a resent copy goes to no member,
// even one that never saw the original (its client could not tell).
func TestGroupResendOnce(t *testing.T) {
	b, path := startBroker(t, broker.Config{WriteTimeout: time.Hour})
	var mu sync.Mutex
	got := map[string]int{}
	total := make(chan struct{}, 1<<16)
	for range 2 {
		m := dial(t, path)
		if _, err := m.SubscribeWith(testCtx(t), SubscribeOptions{Patterns: []string{"r.#"}, Group: "g", Handler: func(msg *Message) {
			mu.Lock()
			got[string(msg.Payload)]++
			mu.Unlock()
			total <- struct{}{}
		}}); err != nil {
			t.Fatal(err)
		}
	}
	// A stuck subscriber holds the confirmations back, so the publisher
	// has unconfirmed publishes to resend.
	stuck := dial(t, path)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	if _, err := stuck.SubscribeFunc(testCtx(t), func(*Message) { <-block }, "r.#"); err != nil {
		t.Fatal(err)
	}
	pub := dial(t, path)
	gaps := subscribe(t, pub, "unrelated.#")
	payload := make([]byte, 1<<10)
	for i := range rigMessages {
		copy(payload, strconv.Itoa(i)+":")
		publish(t, pub, "r.x", payload)
	}
	for range rigMessages {
		select {
		case <-total:
		case <-time.After(testutil.Timeout):
			t.Fatal("the group did not receive every message")
		}
	}
	pub.mu.Lock()
	resent := pub.lastSeq - pub.doneSeq
	pub.conn.nc.Close()
	pub.mu.Unlock()
	if resent == 0 {
		t.Fatal("nothing unconfirmed: the test cannot show a resend")
	}
	<-gaps.Gaps()
	if _, err := pub.Ping(testCtx(t)); err != nil { // the resends are routed
		t.Fatal(err)
	}
	if d := b.Stats().Requests.GroupDuplicates; d != resent {
		t.Errorf("group duplicates %d; want the %d resent", d, resent)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range got {
		if n != 1 {
			t.Errorf("message %q reached the group %d times", k[:8], n)
		}
	}
	if len(got) != rigMessages {
		t.Errorf("the group got %d distinct messages; want %d", len(got), rigMessages)
	}
}
