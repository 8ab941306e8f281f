//go:build linux

package coord

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
)

// TestRedeliveredAfterLaterTask: the deterministic core of
// TestGroupTasksExactlyOnce's kill. A round-robin group of two processes:
// a holder that never answers, and a worker that answers. Three requests
// from one requester, each issued once the previous one has landed, go
// holder, worker, holder or worker, holder, worker: either way the worker
// has answered a request the requester issued after one the holder holds.
// SIGKILL the holder: the broker gives what it held to the worker, which
// must answer each, promptly, though it already received later requests
// of the same publisher session (a redelivery is not a resent duplicate:
// before 5043efb the worker's client dropped it as one, and the request
// timed out).
func TestRedeliveredAfterLaterTask(t *testing.T) {
	const redeliveryBound = 5 * time.Second // a failure bound: a redelivered request is answered in milliseconds
	path := testutil.SocketPath(t)
	startBroker(t, path)
	landed := make(chan string, 16) // "holder <task>" or "worker <task>"
	holder := startSubscribed(t, "holder", "silent", func(l string) {
		if s, ok := strings.CutPrefix(l, "got "); ok {
			landed <- "holder " + strings.Fields(s)[0]
		}
	}, "-socket", path, "-pattern", "task.#", "-group", "workers")
	worker := startSubscribed(t, "worker", "member", func(l string) {
		if s, ok := strings.CutPrefix(l, "task "); ok {
			landed <- "worker " + strings.Fields(s)[0]
		}
	}, "-socket", path, "-pattern", "task.#", "-group", "workers", "-name", "worker")
	c := dial(t, path, "requester")

	var held []int
	results := map[int]<-chan result{}
	for i := range 3 {
		results[i] = requestWithin(c, "task.run", strconv.Itoa(i), redeliveryBound)
		select {
		case l := <-landed:
			who, task, _ := strings.Cut(l, " ")
			if task != strconv.Itoa(i) {
				t.Fatalf("task %d issued, but %q landed", i, l)
			}
			if who == "holder" {
				held = append(held, i)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("task %d landed nowhere within %v", i, waitTimeout)
		}
	}
	if len(held) == 0 || len(held) == 3 {
		t.Fatalf("the holder got tasks %v of 0..2; round robin gives it one or two", held)
	}
	for i := range 3 {
		if !slices.Contains(held, i) {
			if r := <-results[i]; r.err != nil || string(r.m.Payload) != strconv.Itoa(i) {
				t.Fatalf("task %d, answered by the worker: %v, %v", i, r.m, r.err)
			}
		}
	}

	kill(t, holder)
	for _, i := range held {
		r := <-results[i]
		switch {
		case errors.Is(r.err, context.DeadlineExceeded):
			t.Errorf("task %d, held by the killed holder, was not answered within %v of the kill", i, redeliveryBound)
		case r.err != nil:
			t.Errorf("task %d, held by the killed holder: %v; want the worker's reply", i, r.err)
		case string(r.m.Payload) != strconv.Itoa(i) || r.m.PublisherPID != worker.Pid():
			t.Errorf("task %d, held by the killed holder, answered %q by pid %d; want %d by the worker, pid %d", i, r.m.Payload, r.m.PublisherPID, i, worker.Pid())
		}
	}
	finish(t, worker)
	if l := lineOf(t, worker, "bye "); l != "bye duplicates=0 missed=0" {
		t.Errorf("worker: %q; want no delivery dropped: its client dropped the redelivered requests as resent copies", l)
	}
	if n := len(linesWith(worker, "task ")); n != 3 {
		t.Errorf("the worker handled %d tasks; want all 3: %q", n, linesWith(worker, "task "))
	}
	rs := requestStats(t, dial(t, path, "stats"))
	if rs.Redelivered != uint64(len(held)) || rs.Replies != 3 || rs.RepliesDropped != 0 || rs.GroupDuplicates != 0 {
		t.Errorf("broker request stats %+v; want %d redelivered, 3 replies, none dropped", rs, len(held))
	}
	t.Logf("the holder held tasks %v when killed", held)
}

// requestWithin is request with a deadline of its own.
func requestWithin(c *eventbus.Client, topicName, payload string, d time.Duration) <-chan result {
	ch := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		m, err := c.Request(ctx, topicName, []byte(payload))
		ch <- result{m, err}
	}()
	return ch
}
