package acl

import (
	"testing"

	"daemoneye.dev/eventbus/transport"
)

// TestDefaultMatchesSpec walks SPEC.md §3's table: each topic's level, that
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
