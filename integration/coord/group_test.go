//go:build linux

package coord

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
)

// The task stream of TestGroupTasksExactlyOnce: groupTasks requests,
// groupWindow in flight. The requester may issue only the tasks below
// groupKillAt until the member to be killed is stopped: it is stopped once
// the requester has groupKillAt-groupStopEarly replies, so mid-stream,
// with up to groupStopEarly requests still in flight (some maybe in its
// handler), and killed once the survivors have answered groupAfterStop
// tasks issued after it stopped.
const (
	groupTasks     = 10000
	groupWindow    = 100
	groupKillAt    = 3000
	groupStopEarly = 50
	groupAfterStop = 10
	// groupRequestTimeout is each task's deadline: far more than a task
	// takes, and well inside waitTimeout, so that a task the broker lost
	// fails as such and the test reports who handled it.
	groupRequestTimeout = 10 * time.Second
)

// handled is what one member printed: the tasks it handled.
type handled struct {
	name string
	pid  int
	got  []bool
	n    int
}

// parseMember reads the "task" lines of a member, failing the test on a
// task handled twice by it, a line naming no task, or a failed reply.
func parseMember(t *testing.T, p *proctest.Proc, survivor bool) *handled {
	t.Helper()
	h := &handled{name: p.Name, pid: p.Pid(), got: make([]bool, groupTasks)}
	for _, l := range p.Stdout.Lines() {
		switch {
		case strings.HasPrefix(l, "task "):
			i, ok := taskNumber(l, "task ", groupTasks)
			if !ok {
				t.Errorf("%s: bad line %q", p.Name, l)
				continue
			}
			if h.got[i] {
				t.Errorf("%s handled task %d twice", p.Name, i)
			}
			h.got[i] = true
			h.n++
		case l == "subscribed":
		case strings.HasPrefix(l, "bye "):
			if l != "bye duplicates=0 missed=0" {
				t.Errorf("%s: %q; want no delivery dropped, by the broker or as a resent copy by its client (nothing reconnected)", p.Name, l)
			}
		case strings.HasPrefix(l, "replyerr ") && !survivor:
			// The killed member may have seen its connection go; never
			// observed, since SIGKILL leaves it no time to.
		default:
			t.Errorf("%s: unexpected line %q", p.Name, l)
		}
	}
	return h
}

// TestGroupTasksExactlyOnce: three processes serve a round-robin queue
// group, a requester process issues 10,000 tasks to it, 100 in flight, and
// one member is SIGKILLed at about 3,000 replies. Every task must get
// exactly one reply, carrying its number, from the member that handled
// it; no task may be handled by both survivors; and a task the killed
// member did not print is handled by exactly one survivor. A task the
// killed member printed either got its reply (then no survivor handled
// it) or not (its reply died with it: then the broker gave it to a
// survivor, which handled it once) — both are exact, as each process
// prints a task before replying to it.
//
// The member is SIGSTOPped first, mid-stream, and SIGKILLed once the
// survivors have answered groupAfterStop tasks issued after the stop:
// round robin takes the members in turn, so the stopped member was given
// some of the tasks routed in between, which it cannot have answered. So
// the kill always finds it holding requests, however the machine
// schedules the processes, and the broker must redeliver them.
func TestGroupTasksExactlyOnce(t *testing.T) {
	start := time.Now()
	path := testutil.SocketPath(t)
	startBroker(t, path)
	a := startSubscribed(t, "member-a", "member", nil, "-socket", path, "-name", "member-a")
	b := startSubscribed(t, "member-b", "member", nil, "-socket", path, "-name", "member-b")
	k := startSubscribed(t, "member-k", "member", nil, "-socket", path, "-name", "member-k")

	var answered, afterStop atomic.Int64
	req := startHelper(t, "requester", "requester", func(l string) {
		if strings.HasPrefix(l, "reply ") || strings.HasPrefix(l, "fail ") {
			answered.Add(1)
			if i, _ := taskNumber(l, strings.Fields(l)[0]+" ", groupTasks); i >= groupKillAt {
				afterStop.Add(1)
			}
		}
	}, "-socket", path, "-n", strconv.Itoa(groupTasks), "-window", strconv.Itoa(groupWindow), "-allow", strconv.Itoa(groupKillAt),
		"-timeout", groupRequestTimeout.String())
	req.Await(t, waitTimeout, fmt.Sprintf("get %d replies", groupKillAt-groupStopEarly),
		func() bool { return answered.Load() >= groupKillAt-groupStopEarly })
	atStop := answered.Load()
	stop(t, k)
	// Every task from groupKillAt on is issued after the stop.
	fmt.Fprintf(req.Stdin, "allow %d\n", groupTasks)
	req.Await(t, waitTimeout, fmt.Sprintf("get %d replies to tasks issued after the stop", groupAfterStop),
		func() bool { return afterStop.Load() >= groupAfterStop })
	kill(t, k)
	atKill := answered.Load()
	killedAt := time.Since(start)
	req.WaitOK(t, waitTimeout)
	finish(t, a)
	finish(t, b)

	// The requester's account: one reply per task, carrying its number.
	replyPID := make([]int, groupTasks)
	for _, l := range req.Stdout.Lines() {
		switch {
		case strings.HasPrefix(l, "reply "):
			i, ok := taskNumber(l, "reply ", groupTasks)
			f := fields(l)
			pid, err := strconv.Atoi(f["pid"])
			if !ok || err != nil {
				t.Fatalf("requester: bad line %q", l)
			}
			if replyPID[i] != 0 {
				t.Errorf("task %d got a second reply: %q", i, l)
			}
			replyPID[i] = pid
			if want := strconv.Quote(strconv.Itoa(i)); f["payload"] != want {
				t.Errorf("task %d's reply carries %s; want %s", i, f["payload"], want)
			}
		case strings.HasPrefix(l, "fail "):
			t.Errorf("requester: %s", l)
		case l == "ready", strings.HasPrefix(l, "done "):
		default:
			t.Errorf("requester: unexpected line %q", l)
		}
	}
	if want := fmt.Sprintf("done replies=%d fails=0", groupTasks); !contains(req.Stdout.Lines(), want) {
		t.Errorf("requester did not print %q; its last lines:\n%s", want, req.Stdout.Tail(500))
	}

	ha, hb, hk := parseMember(t, a, true), parseMember(t, b, true), parseMember(t, k, false)
	var (
		again    int // printed by the killed member, then handled by a survivor
		byKilled int // answered by the killed member
		bad      int
	)
	report := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for i := range groupTasks {
		inA, inB, inK := ha.got[i], hb.got[i], hk.got[i]
		switch {
		case replyPID[i] == 0:
			report("task %d got no reply (handled by a=%t b=%t killed=%t)", i, inA, inB, inK)
		case inA && inB:
			report("task %d was handled by both survivors", i)
		case inA || inB:
			h := ha
			if inB {
				h = hb
			}
			if replyPID[i] != h.pid {
				report("task %d was handled by %s (pid %d) but its reply came from pid %d (killed member printed it: %t)",
					i, h.name, h.pid, replyPID[i], inK)
			}
			if inK {
				again++
			}
		case inK:
			if replyPID[i] != hk.pid {
				report("task %d was handled by the killed member only, but its reply came from pid %d", i, replyPID[i])
			}
			byKilled++
		default:
			report("task %d was answered (by pid %d) but no member printed it", i, replyPID[i])
		}
	}
	if bad > 20 {
		t.Errorf("... %d task errors in all", bad)
	}

	// The broker's account, over a connection of the test's own.
	rs := requestStats(t, dial(t, path, "stats"))
	if rs.Replies != groupTasks || rs.RepliesDropped != 0 || rs.Pending != 0 || rs.NoResponders != 0 || rs.GroupDuplicates != 0 {
		t.Errorf("broker request stats %+v; want %d replies, none dropped, pending, without responders or resent", rs, groupTasks)
	}
	// The killed member held requests it had not answered (those routed to
	// it after it stopped at least): the broker gave each to a survivor.
	// Those it printed and a survivor handled are among them.
	if rs.Redelivered == 0 || rs.Redelivered > groupWindow || int(rs.Redelivered) < again {
		t.Errorf("broker redelivered %d requests; want between max(1, %d) (tasks the killed member printed and a survivor handled) and %d (the window)",
			rs.Redelivered, again, groupWindow)
	}
	if byKilled == 0 || byKilled != hk.n-again {
		t.Errorf("the killed member answered %d tasks; it printed %d, of which %d were handled again", byKilled, hk.n, again)
	}
	t.Logf("member stopped at %d replies, killed %v in at %d of %d; handled: a=%d b=%d killed=%d (answered %d, printed then redone %d); broker redelivered %d; %v in all",
		atStop, killedAt.Round(time.Millisecond), atKill, groupTasks, ha.n, hb.n, hk.n, byKilled, again, rs.Redelivered, time.Since(start).Round(time.Millisecond))
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
