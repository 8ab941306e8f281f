package acl

import (
	"fmt"
	"slices"
	"strings"
)

// Rules returns copies of every rule of the policy: the topic rules, most
// specific first (the order precedence uses), then each component's allow
// and deny rules, components sorted by name, each most specific first. The
// agent's implicit "#" grants are included.
func (p *Policy) Rules() []*Rule {
	rules := sortedRules(p.topicRules)
	for _, name := range p.names {
		rules = append(rules, sortedRules(p.comps[name].rules)...)
	}
	for i, r := range rules {
		rules[i] = clone(r)
	}
	return rules
}

// sortedRules returns rules in precedence order (beats first); grants are
// grouped by action, publish first.
func sortedRules(rules []*Rule) []*Rule {
	s := slices.Clone(rules)
	slices.SortStableFunc(s, func(a, b *Rule) int {
		if a.Kind != TopicRule && a.Action != b.Action {
			return int(a.Action) - int(b.Action)
		}
		switch {
		case a.beats(b):
			return -1
		case b.beats(a):
			return 1
		}
		return 0
	})
	return s
}

// String prints the effective policy for people (`eventbus policy check`):
// the default level, the topic rules in precedence order, and each
// component's admission requirements (sids only where given) and grants.
func (p *Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s\n", p.source)
	fmt.Fprintf(&b, "default_access: %s (topics no rule matches)\n", p.defaultAccess)
	b.WriteString("topics (most specific first):\n")
	if len(p.topicRules) == 0 {
		b.WriteString("  (none)\n")
	}
	w := 0
	for _, r := range p.topicRules {
		w = max(w, len(r.Pattern))
	}
	for _, r := range sortedRules(p.topicRules) {
		fmt.Fprintf(&b, "  %-*s  %-10s  %s\n", w, r.Pattern, r.Access, r.Source)
	}
	b.WriteString("components:\n")
	for _, name := range p.names {
		c := p.comps[name]
		fmt.Fprintf(&b, "  %s: %s, executables %s\n", name, c.users(), anyIf(c.executables))
		w := 0
		for _, r := range c.rules {
			w = max(w, len(r.Pattern))
		}
		for _, r := range sortedRules(c.rules) {
			fmt.Fprintf(&b, "    %-14s  %-*s  %s\n", r.field(), w, r.Pattern, r.Source)
		}
	}
	switch {
	case p.tokenFile != "":
		fmt.Fprintf(&b, "agent token: %s\n", p.tokenFile)
	case p.tokenSum != nil:
		b.WriteString("agent token: set by the embedder\n")
	default:
		b.WriteString("agent token: none configured (only the in-process client is the agent)\n")
	}
	return b.String()
}

// users prints who may claim c: uids and gids (Unix peers), and sids
// (Windows peers) where given.
func (c *component) users() string {
	s := fmt.Sprintf("uids %s, gids %s", anyIf(c.uids), anyIf(c.gids))
	switch {
	case len(c.sids) > 0 && len(c.uids) == 0 && len(c.gids) == 0:
		s = fmt.Sprintf("sids %v (no Unix peer)", c.sids)
	case len(c.sids) > 0:
		s += fmt.Sprintf(", sids %v", c.sids)
	}
	return s
}

// anyIf prints a list, or "any" when it is empty (no requirement).
func anyIf[T any](s []T) string {
	if len(s) == 0 {
		return "any"
	}
	return fmt.Sprint(s)
}
