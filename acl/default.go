package acl

// collectorGrants is one collector's row of SPEC.md §3: what it publishes
// (its events family) and the task type it is assigned.
var collectorGrants = []struct{ name, events, task string }{
	{"procmond", "events.process.#", "control.collector.task.process.#"},
	{"netmond", "events.network.#", "control.collector.task.network.#"},
	{"fsmond", "events.filesystem.#", "control.collector.task.filesystem.#"},
	{"perfmond", "events.performance.#", "control.collector.task.performance.#"},
}

// Default returns the built-in policy, SPEC.md §3's table:
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
// everything. Components are admitted from brokerUID and root; no
// executables are required and no agent token file is set, so only the
// in-process client is the agent until [Policy.WithAgentToken].
func Default(brokerUID uint32) *Policy {
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

	uids := []uint32{brokerUID}
	if brokerUID != 0 {
		uids = append(uids, 0)
	}
	grant := func(c *componentSpec, kind RuleKind, a Action, patterns ...string) {
		for _, p := range patterns {
			c.rules = append(c.rules, &Rule{Kind: kind, Pattern: p, Action: a, Source: "default"})
		}
	}
	for _, g := range collectorGrants {
		c := &componentSpec{name: g.name, uids: uids, hasPublish: true, hasSub: true}
		grant(c, AllowRule, Publish, g.events, "control.collector.registration", "control.health.#")
		grant(c, AllowRule, Subscribe, g.task, "control.collector.config", "control.collector.lifecycle")
		s.comps = append(s.comps, c)
	}
	agent := &componentSpec{name: AgentComponent, uids: uids, hasPublish: true, hasSub: true}
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
