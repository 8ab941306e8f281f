package acl

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"daemoneye.dev/eventbus/topic"
)

// AgentComponent is the component name of the agent: the broker's
// in-process client, or a peer that presents the agent token.
const AgentComponent = "agent"

// BrokerComponent is the component the broker publishes its own messages
// as (the collector registry's); no policy may define it, so no peer can
// pass for the broker.
const BrokerComponent = "broker"

// indexCacheSize bounds the result cache of each of a policy's topic
// indexes (topic rules, and each component's grants per action).
const indexCacheSize = 1024

// Level is a topic's access level (docs/SECURITY.md §3). The zero Level is invalid.
type Level uint8

// Access levels, from the least to the most strict.
const (
	Public Level = iota + 1
	Restricted
	Privileged
)

var levelNames = [...]string{Public: "public", Restricted: "restricted", Privileged: "privileged"}

// String returns the name used in messages and output.
func (l Level) String() string {
	if l >= Public && l <= Privileged {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// ParseLevel parses a level's name as the policy file writes it.
func ParseLevel(s string) (Level, error) {
	for l := Public; l <= Privileged; l++ {
		if levelNames[l] == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%q is not one of public, restricted, privileged", s)
}

// Action is what a peer wants to do with a topic.
type Action uint8

const (
	Publish   Action = iota // publish to a topic
	Subscribe               // receive a topic (subscribe to it, or have it delivered)
)

// String returns the name used in messages and output.
func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// RuleKind tells what a [Rule] does.
type RuleKind uint8

const (
	TopicRule RuleKind = iota // sets the access level of the topics it matches
	AllowRule                 // grants a component an action (publish, subscribe lists)
	DenyRule                  // refuses a component an action (deny_publish, deny_subscribe lists)
)

// Rule is one rule of a policy.
type Rule struct {
	Kind      RuleKind
	Pattern   string
	Access    Level  // TopicRule only
	Component string // AllowRule and DenyRule only
	Action    Action // AllowRule and DenyRule only
	Source    string // where it was written: "file:line", "default" (built in) or "implicit"

	spec  specificity
	order int // position in the policy, the last tie-breaker
}

// field is the policy file's name for the list the rule came from.
func (r *Rule) field() string {
	switch r.Kind {
	case AllowRule:
		return r.Action.String()
	case DenyRule:
		return "deny_" + r.Action.String()
	}
	return "topics"
}

// String returns the name used in messages and output.
func (r *Rule) String() string {
	if r.Kind == TopicRule {
		return fmt.Sprintf("topic %s %s (%s)", r.Pattern, r.Access, r.Source)
	}
	return fmt.Sprintf("%s %s %s (%s)", r.Component, r.field(), r.Pattern, r.Source)
}

// short describes r without its component.
func (r *Rule) short() string {
	return fmt.Sprintf("%s %s (%s)", r.field(), r.Pattern, r.Source)
}

// strictness orders equally specific rules: a stricter level, or deny over
// allow, wins.
func (r *Rule) strictness() int {
	if r.Kind == TopicRule {
		return int(r.Access)
	}
	if r.Kind == DenyRule {
		return 1
	}
	return 0
}

// beats reports whether r takes precedence over s (package doc, Precedence).
func (r *Rule) beats(s *Rule) bool {
	if c := r.spec.compare(s.spec); c != 0 {
		return c > 0
	}
	if a, b := r.strictness(), s.strictness(); a != b {
		return a > b
	}
	return r.order < s.order
}

// best returns the rule of rules that takes precedence, or nil.
func best(rules []*Rule) *Rule {
	var b *Rule
	for _, r := range rules {
		if b == nil || r.beats(b) {
			b = r
		}
	}
	return b
}

// specificity measures how narrowly a pattern picks topics.
type specificity struct {
	literals, wildcards int
	hash                bool
}

func specOf(pattern string) specificity {
	var s specificity
	for seg := range strings.SplitSeq(pattern, ".") {
		switch seg {
		case "#":
			s.wildcards++
			s.hash = true
		case "+":
			s.wildcards++
		default:
			s.literals++
		}
	}
	return s
}

// compare returns +1 if s is more specific than t, -1 if less, 0 if equal.
func (s specificity) compare(t specificity) int {
	switch {
	case s.literals != t.literals:
		return cmp.Compare(s.literals, t.literals)
	case s.wildcards != t.wildcards:
		return cmp.Compare(t.wildcards, s.wildcards)
	case s.hash != t.hash:
		if t.hash {
			return 1
		}
		return -1
	}
	return 0
}

// Policy is a parsed, validated access policy. It is immutable and safe for
// concurrent use; reload by building a new one.
type Policy struct {
	source        string
	defaultAccess Level
	topicRules    []*Rule
	topicIx       *topic.Index[*Rule]
	comps         map[string]*component
	names         []string // component names, sorted
	tokenFile     string
	tokenSum      *[sha256.Size]byte // SHA-256 of the agent token; nil: none configured
}

// component is one entry of components: in the policy.
type component struct {
	name        string
	uids, gids  []uint32
	sids        []string // canonical (canonicalSID)
	executables []string
	rules       []*Rule                // allow and deny rules, both actions, in policy order
	ix          [2]*topic.Index[*Rule] // by Action
}

// policySpec is a policy before validation and indexing: what Parse reads
// and Default writes.
type policySpec struct {
	source        string
	defaultAccess Level
	topics        []*Rule
	comps         []*componentSpec
	tokenFile     string
}

type componentSpec struct {
	name               string
	uids, gids         []uint32
	sids               []string
	executables        []string
	rules              []*Rule
	hasPublish, hasSub bool // the lists were given (the agent's default to "#")
}

// build indexes a spec whose fields the caller has validated.
func (s *policySpec) build() (*Policy, error) {
	p := &Policy{
		source: s.source, defaultAccess: s.defaultAccess, tokenFile: s.tokenFile,
		topicIx: topic.NewIndex[*Rule](indexCacheSize), comps: make(map[string]*component),
	}
	if p.defaultAccess == 0 {
		p.defaultAccess = Restricted
	}
	order := 0
	for _, r := range s.topics {
		r.spec, r.order = specOf(r.Pattern), order
		order++
		if err := p.topicIx.Insert(r.Pattern, r); err != nil {
			return nil, err
		}
		p.topicRules = append(p.topicRules, r)
	}
	specs := s.comps
	if !slices.ContainsFunc(specs, func(c *componentSpec) bool { return c.name == AgentComponent }) {
		specs = append(slices.Clip(specs), &componentSpec{name: AgentComponent})
	}
	for _, cs := range specs {
		c := &component{name: cs.name, uids: cs.uids, gids: cs.gids, sids: cs.sids, executables: cs.executables}
		c.ix[Publish] = topic.NewIndex[*Rule](indexCacheSize)
		c.ix[Subscribe] = topic.NewIndex[*Rule](indexCacheSize)
		rules := cs.rules
		if cs.name == AgentComponent {
			rules = agentDefaults(cs, rules)
		}
		for _, r := range rules {
			r.Component, r.spec, r.order = cs.name, specOf(r.Pattern), order
			order++
			if err := c.ix[r.Action].Insert(r.Pattern, r); err != nil {
				return nil, err
			}
			c.rules = append(c.rules, r)
		}
		p.comps[cs.name] = c
		p.names = append(p.names, cs.name)
	}
	slices.Sort(p.names)
	return p, nil
}

// agentDefaults adds "#" for each of the agent's lists the policy omits.
func agentDefaults(cs *componentSpec, rules []*Rule) []*Rule {
	if !cs.hasPublish {
		rules = append(slices.Clip(rules), &Rule{Kind: AllowRule, Pattern: "#", Action: Publish, Source: "implicit"})
	}
	if !cs.hasSub {
		rules = append(slices.Clip(rules), &Rule{Kind: AllowRule, Pattern: "#", Action: Subscribe, Source: "implicit"})
	}
	return rules
}

// WithAgentToken returns a copy of p that accepts token as the agent
// credential (see [EnsureTokenFile]); an empty token accepts none. p itself
// is unchanged. Only the token's SHA-256 digest is kept.
func (p *Policy) WithAgentToken(token []byte) *Policy {
	q := *p
	q.tokenSum = nil
	if len(token) > 0 {
		sum := sha256.Sum256(token)
		q.tokenSum = &sum
	}
	return &q
}

// Source returns the file the policy was read from, or "default".
func (p *Policy) Source() string { return p.source }

// DefaultAccess returns the level of topics no topic rule matches.
func (p *Policy) DefaultAccess() Level { return p.defaultAccess }

// TokenFile returns the agent.token_file setting, or "".
func (p *Policy) TokenFile() string { return p.tokenFile }

// Components returns the names of the policy's components, sorted,
// including the agent.
func (p *Policy) Components() []string { return slices.Clone(p.names) }

// LevelOf returns the access level of a valid topic and the topic rule
// that set it, or nil when default_access did.
func (p *Policy) LevelOf(topicName string) (Level, *Rule) {
	if r := best(p.topicIx.Match(topicName)); r != nil {
		return r.Access, r
	}
	return p.defaultAccess, nil
}

// grantOf returns the rule deciding whether component may do action on a
// valid topic, or nil when none matches (not granted).
func (p *Policy) grantOf(name string, a Action, topicName string) *Rule {
	c := p.comps[name]
	if c == nil || a > Subscribe {
		return nil
	}
	return best(c.ix[a].Match(topicName))
}
