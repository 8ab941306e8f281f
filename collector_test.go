package eventbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// collectorPolicy makes every topic public and admits procmond from this
// process's user: its uid, or on Windows its SID.
func collectorPolicy(t *testing.T) *acl.Policy {
	t.Helper()
	self, err := transport.Self()
	if err != nil {
		t.Fatal(err)
	}
	who := fmt.Sprintf("uids: [%d]", os.Geteuid())
	if self.SID != "" {
		who = fmt.Sprintf("sids: [%q]", self.SID)
	}
	p, err := acl.Parse("collectors", fmt.Appendf(nil, "default_access: public\ncomponents:\n  procmond:\n    %s\n", who))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type event struct {
	Event      string   `json:"event"`
	Component  string   `json:"component"`
	PID        int      `json:"pid"`
	Status     string   `json:"status"`
	Health     string   `json:"health"`
	EventTypes []string `json:"event_types"`
}

func nextEvent(t *testing.T, s *Subscription) (event, *Message) {
	t.Helper()
	m := recvMsg(t, s)
	var e event
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		t.Fatalf("%s payload %q: %v", m.Topic, m.Payload, err)
	}
	return e, m
}

func TestRegistration(t *testing.T) {
	_, path := startBroker(t, broker.Config{Policy: collectorPolicy(t)})
	watcher := dial(t, path, WithComponent("procmond"))
	reg := subscribe(t, watcher, "control.collector.registration")
	caps := Capabilities{EventTypes: []string{"process"}, Operations: []string{"scan"}, MaxConcurrentTasks: 4, Priorities: []int{1, 2},
		Version: "1.2.3", Attributes: map[string]string{"os": "linux"}}
	col := dial(t, path, WithComponent("procmond"), WithCapabilities(caps))

	e, m := nextEvent(t, reg)
	if e.Event != "registered" || e.Component != "procmond" || e.PID != os.Getpid() || !slices.Equal(e.EventTypes, []string{"process"}) {
		t.Errorf("registration event %+v; want procmond registered with its capabilities", e)
	}
	if m.PublisherComponent != "broker" || m.PublisherPID != os.Getpid() {
		t.Errorf("registration event published by %q (pid %d); want the broker", m.PublisherComponent, m.PublisherPID)
	}
	list, err := watcher.Collectors(testCtx(t))
	if err != nil || len(list) != 1 {
		t.Fatalf("Collectors = %v, %v; want one", list, err)
	}
	if got := list[0]; got.Component != "procmond" || got.Capabilities.Version != "1.2.3" || got.Capabilities.MaxConcurrentTasks != 4 ||
		!slices.Equal(got.Capabilities.Priorities, []int{1, 2}) || got.Status != StatusStarting || !got.Healthy {
		t.Errorf("registry entry %+v; want procmond, starting, healthy, with its capabilities", got)
	}
	if err := col.SetStatus(testCtx(t), StatusReady, map[string]string{"queue": "0"}); err != nil {
		t.Fatal(err)
	}
	settle(t, col)
	if list, _ := watcher.Collectors(testCtx(t)); len(list) != 1 || list[0].Status != StatusReady || list[0].Diagnostics["queue"] != "0" {
		t.Errorf("after SetStatus the registry says %+v; want ready with its diagnostics", list)
	}
	col.Close()
	if e, _ := nextEvent(t, reg); e.Event != "deregistered" {
		t.Errorf("after Close: %+v; want deregistered", e)
	}

	// Registering needs an admitted component.
	for _, opts := range [][]ClientOption{{WithCapabilities(caps)}, {WithComponent("nobody"), WithCapabilities(caps)}} {
		if _, err := Dial(testCtx(t), path, append(opts, WithReconnect(false))...); !errors.Is(err, ErrForbidden) {
			t.Errorf("registering without an admitted component = %v; want %v", err, ErrForbidden)
		}
	}
	if _, err := dial(t, path).Collectors(testCtx(t)); !errors.Is(err, ErrForbidden) {
		t.Errorf("an anonymous registry query = %v; want %v", err, ErrForbidden)
	}
}

// TestHeartbeatExpiry: a registered collector that sends no heartbeat is
// marked unhealthy after 3 intervals and expired after 6, and both
// transitions are published.
func TestHeartbeatExpiry(t *testing.T) {
	_, path := startBroker(t, broker.Config{Policy: collectorPolicy(t), HeartbeatInterval: 40 * time.Millisecond, UnhealthyAfter: 3, ExpireAfter: 6})
	watcher := dial(t, path, WithComponent("procmond"))
	health := subscribe(t, watcher, "control.health.status")
	settle(t, watcher)
	silent := testutil.DialRaw(t, path)
	silent.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{Component: "procmond", Capabilities: &wire.Capabilities{EventTypes: []string{"process"}}}))
	if ok := silent.ReadHandshake(); ok.HeartbeatIntervalMs != 40 {
		t.Fatalf("HELLO_OK heartbeat interval %d ms; want 40", ok.HeartbeatIntervalMs)
	}
	start := time.Now()
	e, _ := nextEvent(t, health)
	if e.Event != "unhealthy" || e.Health != "unhealthy" {
		t.Fatalf("first health event %+v; want unhealthy", e)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("unhealthy after %v; want at least 3 intervals", d)
	}
	if e, _ = nextEvent(t, health); e.Event != "expired" {
		t.Fatalf("second health event %+v; want expired", e)
	}
	if _, _, err := silent.ReadFrame(); err == nil {
		t.Errorf("the expired collector's connection is still open")
	}
	if list, _ := watcher.Collectors(testCtx(t)); len(list) != 0 {
		t.Errorf("registry after expiry: %+v; want empty", list)
	}

	// A collector that heartbeats stays healthy: no event for 10 intervals,
	// well past expiry (an absence takes time to show).
	dial(t, path, WithComponent("procmond"), WithCapabilities(Capabilities{EventTypes: []string{"process"}}))
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case m := <-health.C:
			t.Fatalf("health event for a collector that heartbeats: %s", m.Payload)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if list, _ := watcher.Collectors(testCtx(t)); len(list) != 1 || !list[0].Healthy {
		t.Errorf("registry: %+v; want the live collector, healthy", list)
	}
}
