//go:build linux

package hostile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/wire"
)

// Small queues, so that a flood fills them at once.
const (
	operatorPendingBytes = 1 << 20  // max_pending_bytes
	operatorMessageSize  = 64 << 10 // max_message_size
	floodPayload         = 32 << 10
)

// subscribeRaw subscribes r to pattern and reads the OK.
func subscribeRaw(r *testutil.Raw, pattern string) {
	r.Send(wire.TypeSubscribe, &wire.Subscribe{RequestId: 1, SubscriptionId: 1, Patterns: []string{pattern}})
	r.Expect(wire.TypeOK)
}

// TestOperatorAnswered: subscribers that stop reading (raw connections,
// three anonymous and one the agent, each subscribed to the flood) while
// procmond floods them, with max_pending_bytes 1 MiB, until every one of
// their queues is full and dropping; the flood goes on.
//
// Bound: each stuck queue holds at most about max_pending_bytes; the
// operator is always answered: `eventbus stats --as agent` exits 0 with
// the statistics, and the stuck agent connection, whose own queue is full,
// sends STATS_REQUEST and finds the STATS_RESPONSE among its frames once it
// reads again (the agent's queue takes every reply).
func TestOperatorAnswered(t *testing.T) {
	b := startBroker(t, fmt.Sprintf("max_pending_bytes: %d", operatorPendingBytes), fmt.Sprintf("max_message_size: %d", operatorMessageSize))
	operator := b.agent(t, "operator")
	var stuck []*testutil.Raw
	for i := range 3 {
		stuck = append(stuck, b.rawAs(t, fmt.Sprintf("stuck-anon-%d", i), "", nil))
	}
	stuckAgent := b.rawAs(t, "stuck-agent", "agent", b.token(t))
	for _, r := range append(stuck, stuckAgent) {
		subscribeRaw(r, publicTopic)
	}

	// The flood, until the test is done with it.
	pub := b.procmond(t, "flooder")
	ctx, stop := context.WithCancel(context.Background())
	flooded := make(chan error, 1)
	go func() {
		payload := make([]byte, floodPayload)
		for ctx.Err() == nil {
			if err := pub.Publish(ctx, publicTopic, payload); err != nil && ctx.Err() == nil {
				flooded <- err
				return
			}
		}
		flooded <- nil
	}()
	defer func() {
		stop()
		if err := <-flooded; err != nil {
			t.Errorf("flood: %v", err)
		}
	}()

	// Every stuck queue is full once the broker drops for it.
	var full stats.Snapshot
	fillCtx := testCtx(t)
	for {
		full = snapshot(t, operator)
		cs := connsNamed(full, "stuck-")
		dropping := 0
		for _, c := range cs {
			if c.Dropped > 0 {
				dropping++
			}
		}
		if len(cs) != len(stuck)+1 {
			t.Fatalf("stats list %d stuck subscribers; want %d", len(cs), len(stuck)+1)
		}
		if dropping == len(cs) {
			break
		}
		if fillCtx.Err() != nil {
			t.Fatalf("stuck subscribers still not dropping: %+v", cs)
		}
	}
	for _, c := range connsNamed(full, "stuck-") {
		t.Logf("%s: %d queued bytes, %d queued messages, %d dropped", c.ClientName, c.QueuedBytes, c.QueuedMessages, c.Dropped)
		if c.QueuedBytes > operatorPendingBytes+operatorMessageSize {
			t.Errorf("%s queues %d bytes; want at most about max_pending_bytes %d", c.ClientName, c.QueuedBytes, operatorPendingBytes)
		}
	}

	// The operator's command, during the flood.
	for _, args := range [][]string{{"stats"}, {"stats", "--json"}} {
		p := proctest.Run(t, proctest.Cmd{Path: proctest.Binary(t), Name: "eventbus " + strings.Join(args, " "),
			Args: append(args, "--as", "agent", "--socket", b.Path)}, waitTimeout)
		if p.ExitCode() != 0 {
			t.Fatalf("eventbus %s --as agent exited %d; stderr:\n%s", strings.Join(args, " "), p.ExitCode(), p.Stderr.String())
		}
		out := p.Stdout.String()
		if len(args) == 1 {
			if !strings.Contains(out, "connections") || !strings.Contains(out, "stuck-agent") {
				t.Errorf("eventbus stats printed no statistics naming the stuck connections:\n%s", out)
			}
			continue
		}
		var s stats.Snapshot
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("eventbus stats --json: %v\n%s", err, out)
		}
		if cs := connsNamed(s, "stuck-"); len(cs) != len(stuck)+1 || s.Dropped == 0 {
			t.Errorf("eventbus stats --json lists %d stuck connections, %d dropped; want %d, drops", len(cs), s.Dropped, len(stuck)+1)
		}
	}

	// The stuck agent asks, then reads what its queue holds: the answer
	// is among it.
	stuckAgent.Send(wire.TypeStatsRequest, &wire.StatsRequest{RequestId: 7})
	delivers := 0
	var resp wire.StatsResponse
	frames, err := readUntil(stuckAgent, func(typ wire.Type, body []byte) (bool, error) {
		switch typ {
		case wire.TypeDeliver:
			delivers++
		case wire.TypeMissed:
		case wire.TypeStatsResponse:
			if err := resp.UnmarshalVT(body); err != nil {
				return false, err
			}
			return resp.RequestId == 7, nil
		default:
			return false, fmt.Errorf("got a %v frame; want DELIVER, MISSED or STATS_RESPONSE", typ)
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("stuck agent waiting for its STATS_RESPONSE: %v", err)
	}
	if delivers == 0 || resp.Stats == nil {
		t.Fatalf("stuck agent read %d deliveries before its STATS_RESPONSE (stats %v); want its full queue first, then the statistics", delivers, resp.Stats != nil)
	}
	t.Logf("stuck agent found its STATS_RESPONSE after %d frames (%d deliveries) its full queue held", frames, delivers)
	found := false
	for _, c := range resp.Stats.ConnectionList {
		found = found || c.ClientName == "stuck-agent" && c.Dropped > 0
	}
	if !found {
		t.Errorf("the stuck agent's statistics do not show its own drops")
	}
}
