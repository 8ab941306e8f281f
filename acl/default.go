package acl

import "daemoneye.dev/eventbus/transport"

// localSystemSID is Windows' LocalSystem account, which services run as:
// the built-in policy admits it as it admits root on Unix.
const localSystemSID = "S-1-5-18"

// collectorGrants is one collector's row of docs/SECURITY.md §3: what it publishes
// (its events family) and the task type it is assigned.
var collectorGrants = []struct{ name, events, task string }{
	{"procmond", "events.process.#", "control.collector.task.process.#"},
	{"netmond", "events.network.#", "control.collector.task.network.#"},
	{"fsmond", "events.filesystem.#", "control.collector.task.filesystem.#"},
	{"perfmond", "events.performance.#", "control.collector.task.performance.#"},
}

// Default is [DefaultFor] a broker whose effective uid is brokerUID: it
// admits components by uid only, from brokerUID and root. Windows peers
// have no uid, so there it admits no component: use DefaultFor with
// transport.Self() instead, as the broker does.
func Default(brokerUID uint32) *Policy {
	return DefaultFor(transport.Peer{UID: brokerUID})
}

// DefaultFor returns the built-in policy of a broker running as self (its
// own identity, transport.Self()), the topic map of docs/TOPICS.md §2:
//
//	public:      events.+.anomaly, control.health.#
//	privileged:  control.collector.lifecycle, control.collector.config, control.agent.policy
//	restricted:  events.{process,network,filesystem,performance}.#, control.collector.task.#,
//	             control.collector.registration, control.agent.orchestration, and
//	             everything else (default_access)
//
// Each collector (procmond, netmond, fsmond, perfmond) publishes its events
// family, control.collector.registration and control.health.#, and
// subscribes to its own tasks (control.collector.task.<type>.#, type
// process, network, filesystem or performance), control.collector.config
// and control.collector.lifecycle. The agent publishes and subscribes to
// everything.
//
// Components (the agent included) are admitted from the broker's own user
// and the system's: on Unix by uid, self.UID and root (0); on Windows,
// where self has a SID and no uid, by SID, self.SID and LocalSystem
// (S-1-5-18). No executables are required and no agent token file is set,
// so only the in-process client is the agent until [Policy.WithAgentToken].
func DefaultFor(self transport.Peer) *Policy {
	s := &policySpec{source: "default", defaultAccess: Restricted}
	level := func(pattern string, l Level) {
		s.topics = append(s.topics, &Rule{Kind: TopicRule, Pattern: pattern, Access: l, Source: "default"})
	}
	level("events.+.anomaly", Public)
	level("control.health.#", Public)
	level("control.collector.lifecycle", Privileged)
	level("control.collector.config", Privileged)
	level("control.agent.policy", Privileged)
	for _, c := range collectorGrants {
		level(c.events, Restricted)
	}
	level("control.collector.task.#", Restricted)
	level("control.collector.registration", Restricted)
	level("control.agent.orchestration", Restricted)

	var uids []uint32
	var sids []string
	if self.SID != "" {
		sids = append(sids, self.SID)
		if self.SID != localSystemSID {
			sids = append(sids, localSystemSID)
		}
	}
	if self.SID == "" || self.UID != unknownID { // as before SIDs, even for an unknown uid: fails closed
		uids = append(uids, self.UID)
		if self.UID != 0 {
			uids = append(uids, 0)
		}
	}
	grant := func(c *componentSpec, kind RuleKind, a Action, patterns ...string) {
		for _, p := range patterns {
			c.rules = append(c.rules, &Rule{Kind: kind, Pattern: p, Action: a, Source: "default"})
		}
	}
	for _, g := range collectorGrants {
		c := &componentSpec{name: g.name, uids: uids, sids: sids, hasPublish: true, hasSub: true}
		grant(c, AllowRule, Publish, g.events, "control.collector.registration", "control.health.#")
		grant(c, AllowRule, Subscribe, g.task, "control.collector.config", "control.collector.lifecycle")
		s.comps = append(s.comps, c)
	}
	agent := &componentSpec{name: AgentComponent, uids: uids, sids: sids, hasPublish: true, hasSub: true}
	grant(agent, AllowRule, Publish, "#")
	grant(agent, AllowRule, Subscribe, "#")
	s.comps = append(s.comps, agent)
	p, err := s.build()
	if err != nil {
		panic("acl: built-in policy is invalid: " + err.Error()) // a bug, caught by the tests
	}
	return p
}

// Open returns a policy under which every topic is public: any peer may
// publish and subscribe to anything (the broker itself still refuses
// publishes to its `$` topics). It is for tests and for machines where
// every local process is trusted; production deployments use a policy file
// or Default.
func Open() *Policy {
	p, err := Parse("open", []byte("default_access: public\n"))
	if err != nil {
		panic("acl: open policy: " + err.Error()) // a constant that parses
	}
	return p
}
