package acl

import (
	"strings"
	"testing"

	"daemoneye.dev/eventbus/transport"
)

// TestDefaultMatchesSpec walks the topic map of docs/TOPICS.md §2: each topic's level, that
// its normal publisher may publish it, and who else may not.
func TestDefaultMatchesSpec(t *testing.T) {
	const brokerUID = 1000
	p := Default(brokerUID)
	col := func(name string) Identity { return Identity{Component: name, Registered: true} }
	tests := []struct {
		topic     string
		level     Level
		publisher Identity
	}{
		{"events.process.lifecycle", Restricted, col("procmond")},
		{"events.process.metadata", Restricted, col("procmond")},
		{"events.process.tree", Restricted, col("procmond")},
		{"events.process.integrity", Restricted, col("procmond")},
		{"events.process.anomaly", Public, col("procmond")},
		{"events.process.batch", Restricted, col("procmond")},
		{"events.network.connections", Restricted, col("netmond")},
		{"events.network.anomaly", Public, col("netmond")},
		{"events.filesystem.changes", Restricted, col("fsmond")},
		{"events.filesystem.anomaly", Public, col("fsmond")},
		{"events.performance.cpu", Restricted, col("perfmond")},
		{"events.performance.anomaly", Public, col("perfmond")},
		{"control.collector.lifecycle", Privileged, agent},
		{"control.collector.config", Privileged, agent},
		{"control.collector.task.process", Restricted, agent},
		{"control.collector.task.process.42", Restricted, agent},
		{"control.collector.registration", Restricted, col("procmond")},
		{"control.collector.registration", Restricted, col("netmond")},
		{"control.collector.registration", Restricted, col("fsmond")},
		{"control.collector.registration", Restricted, col("perfmond")},
		{"control.agent.orchestration", Restricted, agent},
		{"control.agent.policy", Privileged, agent},
		{"control.health.heartbeat", Public, col("procmond")},
		{"control.health.status", Public, anonymous},
		{"control.health.diagnostics", Public, anonymous},
		{"unlisted.topic", Restricted, agent},
	}
	for _, tt := range tests {
		t.Run(tt.topic+"/"+tt.publisher.Component, func(t *testing.T) {
			if got, _ := p.LevelOf(tt.topic); got != tt.level {
				t.Errorf("LevelOf(%q) = %v; want %v", tt.topic, got, tt.level)
			}
			if err := p.Check(tt.publisher, Publish, tt.topic); err != nil {
				t.Errorf("normal publisher: %v", err)
			}
			if err := p.Check(agent, Subscribe, tt.topic); err != nil {
				t.Errorf("the agent subscribing: %v", err)
			}
			anonErr := p.Check(anonymous, Publish, tt.topic)
			if (anonErr == nil) != (tt.level == Public) {
				t.Errorf("anonymous publish = %v; want allowed only for public", anonErr)
			}
			collErr := p.Check(col("procmond"), Publish, tt.topic)
			if tt.level == Privileged && collErr == nil {
				t.Errorf("collector publish to a privileged topic allowed")
			}
		})
	}
}

type grantCase struct {
	action  Action
	topic   string
	allowed bool
}

// TestDefaultCollectorGrants checks each collector's grants: its own family
// and tasks, not another's.
func TestDefaultCollectorGrants(t *testing.T) {
	p := Default(0)
	for _, g := range collectorGrants {
		own := Identity{Component: g.name, Registered: true}
		family := g.events[:len(g.events)-1] // "events.process."
		task := g.task[:len(g.task)-1]
		tests := []grantCase{
			{Publish, family + "lifecycle", true},
			{Subscribe, family + "lifecycle", false},
			{Publish, "control.collector.registration", true},
			{Subscribe, task + "9", true},
			{Publish, task + "9", false},
			{Subscribe, "control.collector.config", true},
			{Subscribe, "control.collector.lifecycle", true},
			{Subscribe, "control.agent.policy", false},
			{Publish, "control.agent.orchestration", false},
		}
		for _, other := range collectorGrants {
			if other.name != g.name {
				tests = append(tests,
					grantCase{Publish, other.events[:len(other.events)-1] + "lifecycle", false},
					grantCase{Subscribe, other.task[:len(other.task)-1] + "1", false})
			}
		}
		for _, tt := range tests {
			if err := p.Check(own, tt.action, tt.topic); (err == nil) != tt.allowed {
				t.Errorf("%s %v %s = %v; want allowed %v", g.name, tt.action, tt.topic, err, tt.allowed)
			}
		}
	}
}

func TestDefaultAdmission(t *testing.T) {
	tests := []struct {
		brokerUID uint32
		peerUID   uint32
		ok        bool
	}{
		{1000, 1000, true},
		{1000, 0, true},
		{1000, 1001, false},
		{0, 0, true},
		{0, 1000, false},
	}
	for _, tt := range tests {
		p := Default(tt.brokerUID)
		_, err := p.Admit(peerWithUID(tt.peerUID), "", "procmond", nil)
		if (err == nil) != tt.ok {
			t.Errorf("Default(%d).Admit(uid %d) = %v; want ok %v", tt.brokerUID, tt.peerUID, err, tt.ok)
		}
	}
}

func peerWithUID(uid uint32) transport.Peer { return transport.Peer{UID: uid, GID: uid, PID: 1} }

func TestOpen(t *testing.T) {
	p := Open()
	anon := Identity{UID: 1000, PID: 1}
	for _, topicName := range []string{"events.process.lifecycle", "control.agent.policy", "anything.at.all"} {
		if err := p.Check(anon, Publish, topicName); err != nil {
			t.Errorf("Open: anonymous publish %s = %v; want allowed", topicName, err)
		}
	}
	if d, err := p.CheckSubscribe(anon, "#"); err != nil || d != Allow {
		t.Errorf("Open: anonymous subscribe # = %v, %v; want Allow", d, err)
	}
}

// TestDefaultForWindows: a broker with a SID and no uid (Windows) admits
// components from its own user and LocalSystem, by SID.
func TestDefaultForWindows(t *testing.T) {
	const noID = ^uint32(0)
	win := func(sid string) transport.Peer { return transport.Peer{UID: noID, GID: noID, PID: 1, SID: sid} }
	tests := []struct {
		self, peer transport.Peer
		ok         bool
	}{
		{win("S-1-5-21-7-8-9-1001"), win("S-1-5-21-7-8-9-1001"), true},
		{win("S-1-5-21-7-8-9-1001"), win("S-1-5-18"), true},
		{win("S-1-5-21-7-8-9-1001"), win("S-1-5-21-7-8-9-1002"), false},
		{win("S-1-5-21-7-8-9-1001"), win("S-1-5-19"), false}, // LocalService
		{win("S-1-5-18"), win("S-1-5-18"), true},
		{win("S-1-5-18"), win("S-1-5-21-7-8-9-1001"), false},
		{win("S-1-5-21-7-8-9-1001"), peerWithUID(0), false}, // no uid is admitted
	}
	for _, tt := range tests {
		p := DefaultFor(tt.self)
		for _, claim := range []string{"procmond", AgentComponent} {
			token := []byte(nil)
			if claim == AgentComponent {
				token = []byte(strings.Repeat("t", 32))
				p = p.WithAgentToken(token)
			}
			_, err := p.Admit(tt.peer, "", claim, token)
			if (err == nil) != tt.ok {
				t.Errorf("DefaultFor(sid %s).Admit(%s by %+v) = %v; want ok %v", tt.self.SID, claim, tt.peer, err, tt.ok)
			}
		}
	}
	want := "procmond: sids [S-1-5-21-7-8-9-1001 S-1-5-18] (no Unix peer), executables any"
	if s := DefaultFor(win("S-1-5-21-7-8-9-1001")).String(); !strings.Contains(s, want) {
		t.Errorf("DefaultFor(Windows).String() does not contain %q:\n%s", want, s)
	}
}

// TestDefaultForUnix: on Unix DefaultFor(self) is Default(self.UID).
func TestDefaultForUnix(t *testing.T) {
	for _, uid := range []uint32{0, 1000, ^uint32(0)} {
		self := transport.Peer{UID: uid, GID: 5, PID: 9}
		if got, want := DefaultFor(self).String(), Default(uid).String(); got != want {
			t.Errorf("DefaultFor(uid %d) =\n%s\nwant Default(%d) =\n%s", uid, got, uid, want)
		}
	}
	if s := Default(1000).String(); !strings.Contains(s, "procmond: uids [1000 0], gids any, executables any\n") {
		t.Errorf("Default(1000).String() = \n%s\nwant procmond admitted from uids [1000 0]", s)
	}
	// A peer with no uid is refused even by a broker without one.
	if _, err := Default(^uint32(0)).Admit(peerWithUID(^uint32(0)), "", "procmond", nil); err == nil {
		t.Error("Default(no uid) admitted a peer with no uid")
	}
}
