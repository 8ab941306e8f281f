package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/transport"
)

func TestLifecycle(t *testing.T) {
	self, err := transport.Self()
	if err != nil {
		t.Fatal(err)
	}
	b, path := startBroker(t, broker.Config{Policy: acl.DefaultFor(self)})
	agent, err := Dial(testCtx(t), "", InProcess(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	collector := dial(t, path, WithComponent("procmond"), WithCapabilities(Capabilities{EventTypes: []string{"process"}, Version: "2.0"}))
	ops := make(chan LifecycleOp, 10)
	if _, err := collector.ServeLifecycle(testCtx(t), func(_ context.Context, op LifecycleOp, arg []byte) ([]byte, error) {
		ops <- op
		switch op {
		case OpRestart:
			return []byte("restarting"), nil
		case OpUpdateConfig:
			return nil, fmt.Errorf("config %q rejected", arg)
		}
		return nil, ErrUnsupportedOperation
	}); err != nil {
		t.Fatal(err)
	}
	// Another collector serves lifecycle requests too: a directed request
	// never reaches it.
	other := dial(t, path, WithComponent("netmond"))
	if _, err := other.ServeLifecycle(testCtx(t), func(context.Context, LifecycleOp, []byte) ([]byte, error) {
		t.Error("netmond got procmond's lifecycle request")
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}

	if out, err := agent.Control(testCtx(t), "procmond", OpRestart, nil); err != nil || string(out) != "restarting" {
		t.Errorf("Control restart = %q, %v; want restarting", out, err)
	}
	var re *ReplyError
	if _, err := agent.Control(testCtx(t), "procmond", OpUpdateConfig, []byte("bad")); !errors.As(err, &re) || re.Code != "failed" {
		t.Errorf("Control update-config = %v; want a failed *ReplyError", err)
	}
	if _, err := agent.Control(testCtx(t), "procmond", OpPause, nil); !errors.As(err, &re) || re.Code != "unsupported" {
		t.Errorf("Control pause = %v; want an unsupported *ReplyError", err)
	}
	out, err := agent.Control(testCtx(t), "procmond", OpGetCapabilities, nil)
	var caps Capabilities
	if err != nil || json.Unmarshal(out, &caps) != nil || caps.Version != "2.0" {
		t.Errorf("Control get-capabilities = %s, %v; want the registered capabilities", out, err)
	}
	if err := collector.SetStatus(testCtx(t), StatusDegraded, map[string]string{"why": "disk"}); err != nil {
		t.Fatal(err)
	}
	out, err = agent.Control(testCtx(t), "procmond", OpHealthCheck, nil)
	var h healthReply
	if err != nil || json.Unmarshal(out, &h) != nil || h.Status != "degraded" || h.Diagnostics["why"] != "disk" {
		t.Errorf("Control health-check = %s, %v; want degraded (disk)", out, err)
	}
	if _, err := agent.Control(testCtx(t), "fsmond", OpStop, nil); !errors.Is(err, ErrNoResponders) {
		t.Errorf("Control of an absent collector = %v; want %v", err, ErrNoResponders)
	}

	// Privileged: neither an anonymous peer nor a collector may send one.
	for name, c := range map[string]*Client{"anonymous": dial(t, path), "netmond": other} {
		if _, err := c.Control(testCtx(t), "procmond", OpShutdown, nil); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s's Control = %v; want %v", name, err, ErrForbidden)
		}
	}
	close(ops)
	var got []LifecycleOp
	for op := range ops {
		got = append(got, op)
	}
	if want := []LifecycleOp{OpRestart, OpUpdateConfig, OpPause, OpGetCapabilities, OpHealthCheck}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("procmond's handler saw %v; want %v", got, want)
	}
}
