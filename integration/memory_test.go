//go:build linux

package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
)

// rssKB reads a process's resident set size from /proc.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the broker's memory from: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatalf("parse VmRSS %q: %v", line, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestBrokerMemory measures the broker process's resident memory: idle,
// with 1,000 subscriptions held by 10 connections (target: at most 10 MB
// more), and per idle connection.
func TestBrokerMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates RSS several times; .ci/run checks memory in a run without -race")
	}
	path := testutil.SocketPath(t)
	broker := startBroker(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Not a synchronisation (the broker said "ready"): a pause before the
	// baseline so the runtime settles after start; no event marks RSS
	// settled, and the test asserts a difference, not this value.
	time.Sleep(200 * time.Millisecond)
	idle := rssKB(t, broker.pid())

	var clients []*eventbus.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < 10; i++ {
		c, err := eventbus.Dial(ctx, path, eventbus.WithReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		for j := 0; j < 100; j++ {
			if _, err := c.SubscribeFunc(ctx, func(*eventbus.Message) {}, subscriptionPattern(i, j)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// As a registered component: an anonymous peer's statistics show
	// only itself.
	operator, err := eventbus.Dial(ctx, path, eventbus.WithReconnect(false), eventbus.WithComponent("operator"))
	if err != nil {
		t.Fatal(err)
	}
	defer operator.Close()
	st, err := operator.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(st.Patterns); got != 1000 {
		t.Fatalf("broker holds %d distinct patterns; want 1000", got)
	}
	subs := rssKB(t, broker.pid())
	t.Logf("broker RSS: idle %d KB; with 1,000 subscriptions on 10 connections %d KB (+%d KB)", idle, subs, subs-idle)
	if subs-idle > 10*1024 {
		t.Errorf("1,000 subscriptions on 10 connections cost %d KB; want at most 10 MB", subs-idle)
	}

	const extra = 70 // with the 11 above, under the 90 anonymous peers may hold (max_connections 100 less reserved_connections 10)
	for i := 0; i < extra; i++ {
		c, err := eventbus.Dial(ctx, path, eventbus.WithReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if err := clients[len(clients)-1].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	conns := rssKB(t, broker.pid())
	t.Logf("%d more idle connections: +%d KB, %.1f KB each", extra, conns-subs, float64(conns-subs)/extra)
}

// subscriptionPattern mixes literal, + and # patterns over a topic space
// like the collectors'.
func subscriptionPattern(conn, i int) string {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("events.c%d.k%d.lifecycle", conn, i)
	case 1:
		return fmt.Sprintf("events.c%d.+.k%d", conn, i)
	case 2:
		return fmt.Sprintf("control.c%d.k%d.#", conn, i)
	default:
		return fmt.Sprintf("events.c%d.k%d.+.+", conn, i)
	}
}
