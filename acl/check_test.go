package acl

import (
	"errors"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/topic"
)

// Identities of the tests, for testPolicyYAML and Default.
var (
	anonymous = Identity{UID: 1000, GID: 1000, PID: 42}
	procmond  = Identity{Component: "procmond", PID: 10, Registered: true}
	netmond   = Identity{Component: "netmond", PID: 11, Registered: true}
	agent     = Identity{Component: AgentComponent, PID: 1, Agent: true, Registered: true}
)

func TestLevelPrecedence(t *testing.T) {
	p := mustParse(t, `default_access: public
topics:
  - {pattern: "a.#", access: restricted}
  - {pattern: "a.b.#", access: public}
  - {pattern: "a.+.c", access: privileged}
  - {pattern: "a.b.c", access: public}
  - {pattern: "x.+", access: public}
  - {pattern: "x.#", access: privileged}
  - {pattern: "m.+.z", access: public}
  - {pattern: "m.y.+", access: restricted}
  - {pattern: "+.+.+", access: privileged}
  - {pattern: "$sys.#", access: privileged}
`)
	tests := []struct {
		topic string
		want  Level
		rule  string // "" for default_access
	}{
		{"a.b.c", Public, "a.b.c"},           // a literal beats every wildcard
		{"a.b.d", Public, "a.b.#"},           // two literals beat one
		{"a.x.c", Privileged, "a.+.c"},       // two literals beat one, '+' or not
		{"a.q", Restricted, "a.#"},           // the only match
		{"a", Restricted, "a.#"},             // '#' matches zero segments
		{"a.b", Public, "a.b.#"},             // and so does a.b.#
		{"x.y", Public, "x.+"},               // same literals and wildcards: '#' loses
		{"x.y.z", Privileged, "x.#"},         // one literal beats none
		{"m.y.z", Restricted, "m.y.+"},       // a tie: the stricter level wins
		{"q.r.s", Privileged, "+.+.+"},       // wildcards only
		{"q.r", Public, ""},                  // no rule: default_access
		{"$sys.stats", Privileged, "$sys.#"}, // only a "$" rule covers "$" topics
		{"$other.x", Public, ""},             // "+.+.+" does not
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			got, r := p.LevelOf(tt.topic)
			gotRule := ""
			if r != nil {
				gotRule = r.Pattern
			}
			if got != tt.want || gotRule != tt.rule {
				t.Errorf("LevelOf(%q) = %v by %q; want %v by %q", tt.topic, got, gotRule, tt.want, tt.rule)
			}
		})
	}
}

func TestGrantPrecedence(t *testing.T) {
	p := mustParse(t, `components:
  c:
    publish: ["g.#", g.b.c, h.+.z, k.+]
    deny_publish: [g.b.#, h.y.+, "k.#"]
`)
	id := Identity{Component: "c", Registered: true}
	tests := []struct {
		topic   string
		allowed bool
		rule    string // the deciding grant rule, "" for none
	}{
		{"g.x", true, "g.#"},
		{"g.b.x", false, "g.b.#"}, // more literals: the deny wins
		{"g.b.c", true, "g.b.c"},  // a literal allow beats the wildcard deny
		{"g.b", false, "g.b.#"},   // '#' matches zero segments
		{"h.q.z", true, "h.+.z"},
		{"h.y.z", false, "h.y.+"}, // equally specific: deny beats allow
		{"k.y", true, "k.+"},      // '+' beats '#'
		{"k", false, "k.#"},
		{"z.z", false, ""}, // no rule: not granted
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			e := p.Explain(id, Publish, tt.topic)
			gotRule := ""
			if e.Grant != nil {
				gotRule = e.Grant.Pattern
			}
			if e.Allowed != tt.allowed || gotRule != tt.rule {
				t.Errorf("Explain(c, publish, %q) = allowed %v by %q; want %v by %q", tt.topic, e.Allowed, gotRule, tt.allowed, tt.rule)
			}
			if err := p.Check(id, Publish, tt.topic); (err == nil) != tt.allowed {
				t.Errorf("Check(c, publish, %q) = %v; Explain says allowed %v", tt.topic, err, e.Allowed)
			}
		})
	}
}

func TestCheckLevels(t *testing.T) {
	p := mustParse(t, testPolicyYAML)
	const (
		public     = "events.process.anomaly"
		restricted = "events.process.lifecycle"
		privileged = "control.collector.config"
		unlisted   = "other.topic" // default_access: restricted
	)
	tests := []struct {
		who    string
		id     Identity
		action Action
		topic  string
		reason string // "" when allowed
	}{
		{"anonymous", anonymous, Publish, public, ""},
		{"anonymous", anonymous, Subscribe, public, ""},
		{"anonymous", anonymous, Publish, restricted, "restricted topic, publisher is not a registered component"},
		{"anonymous", anonymous, Subscribe, restricted, "restricted topic, subscriber is not a registered component"},
		{"anonymous", anonymous, Publish, privileged, "privileged topic, publisher is not the agent"},
		{"anonymous", anonymous, Subscribe, privileged, "privileged topic, subscriber is not a registered component"},
		{"anonymous", anonymous, Subscribe, unlisted, "restricted topic, subscriber is not a registered component"},

		{"granted", procmond, Publish, public, ""},
		{"granted", procmond, Subscribe, public, ""},
		{"granted", procmond, Publish, restricted, ""},
		{"granted", procmond, Subscribe, "control.collector.task.process.7", ""},
		{"granted", procmond, Publish, privileged, "privileged topic, publisher is not the agent"},
		{"granted", procmond, Subscribe, privileged, ""},
		{"granted but denied", procmond, Publish, "events.process.batch",
			"restricted topic, component procmond is denied it by deny_publish events.process.batch (test.yaml:20)"},

		{"not granted", netmond, Publish, public, ""},
		{"not granted", netmond, Subscribe, public, ""},
		{"not granted", netmond, Publish, restricted, "restricted topic, component netmond has no publish grant for it"},
		{"not granted", netmond, Subscribe, restricted, "restricted topic, component netmond has no subscribe grant for it"},
		{"not granted", netmond, Publish, privileged, "privileged topic, publisher is not the agent"},
		{"not granted", netmond, Subscribe, privileged, "privileged topic, component netmond has no subscribe grant for it"},
		{"not granted", netmond, Subscribe, unlisted, "restricted topic, component netmond has no subscribe grant for it"},

		{"agent", agent, Publish, public, ""},
		{"agent", agent, Subscribe, public, ""},
		{"agent", agent, Publish, restricted, ""},
		{"agent", agent, Subscribe, restricted, ""},
		{"agent", agent, Publish, privileged, ""},
		{"agent", agent, Subscribe, privileged, ""},
		{"agent", agent, Publish, unlisted, ""},

		{"invalid topic", agent, Publish, "events.*", `invalid topic: segment "*": '*' is not a wildcard; use '+' or '#'`},
		{"pattern as topic", agent, Subscribe, "events.#", "invalid topic"},
	}
	for _, tt := range tests {
		t.Run(tt.who+"/"+tt.action.String()+"/"+tt.topic, func(t *testing.T) {
			err := p.Check(tt.id, tt.action, tt.topic)
			if tt.reason == "" {
				if err != nil {
					t.Errorf("Check = %v; want allowed", err)
				}
				return
			}
			var de *DeniedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
				t.Fatalf("Check = %v; want a *DeniedError matching ErrDenied", err)
			}
			if !strings.HasPrefix(de.Reason, tt.reason) {
				t.Errorf("Reason = %q; want %q", de.Reason, tt.reason)
			}
			want := "acl: " + tt.action.String() + " to " + tt.topic + " denied: " + de.Reason
			if err.Error() != want {
				t.Errorf("Error() = %q; want %q", err, want)
			}
			if de.Action != tt.action || de.Topic != tt.topic || de.Identity != tt.id {
				t.Errorf("DeniedError fields = %v %q %v; want %v %q %v", de.Action, de.Topic, de.Identity, tt.action, tt.topic, tt.id)
			}
		})
	}
}

func TestDeniedErrorMessages(t *testing.T) {
	p := Default(0)
	tests := []struct {
		id     Identity
		action Action
		topic  string
		want   string
	}{
		{procmond, Publish, "control.agent.policy", "acl: publish to control.agent.policy denied: privileged topic, publisher is not the agent"},
		{netmond, Subscribe, "events.process.lifecycle", "acl: subscribe to events.process.lifecycle denied: restricted topic, component netmond has no subscribe grant for it"},
	}
	for _, tt := range tests {
		if err := p.Check(tt.id, tt.action, tt.topic); err == nil || err.Error() != tt.want {
			t.Errorf("Check(%s, %v, %s) = %v; want %q", tt.id.Component, tt.action, tt.topic, err, tt.want)
		}
	}
	err := p.Check(agent, Publish, "bad..topic")
	if !errors.Is(err, ErrDenied) || !errors.Is(err, topic.ErrInvalidTopic) {
		t.Errorf("Check(invalid) = %v; want ErrDenied and topic.ErrInvalidTopic", err)
	}
}

func TestAuthorizerFunc(t *testing.T) {
	var calls int
	var a Authorizer = AuthorizerFunc(func(id Identity, action Action, topic string) error {
		calls++
		if topic == "no" {
			return &DeniedError{Action: action, Topic: topic, Identity: id, Reason: "said no"}
		}
		return nil
	})
	if err := a.Authorize(anonymous, Publish, "yes"); err != nil {
		t.Errorf("Authorize(yes) = %v; want nil", err)
	}
	if err := a.Authorize(anonymous, Publish, "no"); !errors.Is(err, ErrDenied) {
		t.Errorf("Authorize(no) = %v; want ErrDenied", err)
	}
	var _ Authorizer = Default(0) // Policy is an Authorizer
	if calls != 2 {
		t.Errorf("calls = %d; want 2", calls)
	}
}

func TestExplain(t *testing.T) {
	p := Default(0)
	tests := []struct {
		name      string
		id        Identity
		action    Action
		topic     string
		allowed   bool
		level     Level
		levelRule string
		grant     string
		lines     []string
	}{
		{"public", anonymous, Subscribe, "control.health.heartbeat", true, Public, "control.health.#", "",
			[]string{"subscribe control.health.heartbeat by anonymous peer (uid 1000, gid 1000, pid 42): allowed", "level:  public, from topic control.health.# public (default)"}},
		{"granted", procmond, Publish, "events.process.tree", true, Restricted, "events.process.#", "events.process.#",
			[]string{"grant:  procmond publish events.process.# (default)"}},
		{"default access", agent, Publish, "unknown.topic", true, Restricted, "", "#",
			[]string{"from default_access (no topic rule matches)"}},
		{"no grant", netmond, Subscribe, "events.process.tree", false, Restricted, "events.process.#", "",
			[]string{"denied", "reason: restricted topic, component netmond has no subscribe grant for it"}},
		{"not agent", procmond, Publish, "control.agent.policy", false, Privileged, "control.agent.policy", "",
			[]string{"reason: privileged topic, publisher is not the agent"}},
		{"invalid", procmond, Publish, "a..b", false, 0, "", "", []string{"invalid topic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := p.Explain(tt.id, tt.action, tt.topic)
			if e.Allowed != tt.allowed || e.Level != tt.level || patternOf(e.LevelRule) != tt.levelRule || patternOf(e.Grant) != tt.grant {
				t.Errorf("Explain = allowed %v level %v by %q grant %q; want %v %v by %q grant %q",
					e.Allowed, e.Level, patternOf(e.LevelRule), patternOf(e.Grant), tt.allowed, tt.level, tt.levelRule, tt.grant)
			}
			if err := p.Check(tt.id, tt.action, tt.topic); (err == nil) != e.Allowed || (err != nil && err.Error() != e.Err.Error()) {
				t.Errorf("Check = %v; Explain.Err = %v", err, e.Err)
			}
			s := e.String()
			for _, l := range tt.lines {
				if !strings.Contains(s, l) {
					t.Errorf("Explain.String() = %q; want it to contain %q", s, l)
				}
			}
		})
	}
}

func patternOf(r *Rule) string {
	if r == nil {
		return ""
	}
	return r.Pattern
}

func TestRulesAndString(t *testing.T) {
	p := mustParse(t, testPolicyYAML)
	rules := p.Rules()
	// 5 topic rules; procmond 5 rules, netmond 3, agent 2 implicit.
	if len(rules) != 15 {
		t.Fatalf("len(Rules()) = %d; want 15", len(rules))
	}
	if r := rules[0]; r.Kind != TopicRule || r.Pattern != "control.collector.lifecycle" {
		t.Errorf("Rules()[0] = %v; want the most specific topic rule first", r)
	}
	if r := rules[5]; r.Component != AgentComponent || r.Pattern != "#" || r.Source != "implicit" {
		t.Errorf("Rules()[5] = %v; want the agent's implicit publish #", r)
	}
	rules[0].Pattern = "changed" // copies: the policy is unchanged
	if p.Rules()[0].Pattern == "changed" {
		t.Error("Rules() returned the policy's own rules")
	}
	s := p.String()
	for _, want := range []string{
		"default_access: restricted",
		"events.+.anomaly             public      test.yaml:3",
		"procmond: uids [0], gids [0], executables [" + testExe + "]",
		"deny_publish    events.process.batch              test.yaml:20",
		"netmond: uids [0 1000], gids any, sids [S-1-5-21-1-2-3-1001], executables any",
		"agent token: " + testTokenFile,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() does not contain %q:\n%s", want, s)
		}
	}
}
