package acl

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"daemoneye.dev/eventbus/topic"
)

// Decision classifies a subscription pattern for one identity.
type Decision uint8

const (
	Deny   Decision = iota // nothing the pattern can match may be delivered: refuse the subscription
	Allow                  // everything it can match may be delivered: deliver without checks
	Filter                 // some topics may be delivered: check each with Check(id, Subscribe, topic)
)

// String returns the name used in messages and output.
func (d Decision) String() string {
	switch d {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	case Filter:
		return "filter"
	}
	return fmt.Sprintf("Decision(%d)", uint8(d))
}

// maxExplore bounds the classes CheckSubscribe examines for one pattern;
// past it the answer is Filter, which is always safe.
const maxExplore = 1 << 12

// CheckSubscribe classifies a subscription pattern for id (package doc,
// Subscriptions). For a literal topic it is Allow or Deny as Check says.
// The error is a [*DeniedError] exactly when the decision is Deny; for a
// wildcard pattern its Reason gives an example topic and why it is denied.
func (p *Policy) CheckSubscribe(id Identity, pattern string) (Decision, error) {
	if err := topic.ValidatePattern(pattern); err != nil {
		reason := err.Error()
		if te, ok := errors.AsType[*topic.Error](err); ok {
			reason = "invalid pattern: " + te.Rule
		}
		return Deny, &DeniedError{Action: Subscribe, Topic: pattern, Identity: id, Reason: reason, cause: err}
	}
	if !topic.IsWildcard(pattern) {
		if err := p.Check(id, Subscribe, pattern); err != nil {
			return Deny, err
		}
		return Allow, nil
	}
	x := p.newExplorer(id, pattern)
	x.visit(0, x.rules)
	switch {
	case x.steps > maxExplore, x.allowed && x.denied:
		return Filter, nil
	case x.allowed:
		return Allow, nil
	case !x.denied: // no valid topic at all: nothing to deliver
		return Deny, &DeniedError{Action: Subscribe, Topic: pattern, Identity: id, Reason: "matches no valid topic"}
	}
	v := x.example
	return Deny, &DeniedError{
		Action: Subscribe, Topic: pattern, Identity: id, Rule: clone(v.deciding()),
		Reason: fmt.Sprintf("no topic it matches may be delivered (e.g. %s: %s)", x.exampleTopic, v.reason(id, Subscribe)),
	}
}

// explorer enumerates one representative topic of every class of topics a
// pattern matches, where a class is a length and, per segment, either a
// literal some rule names at that position or "any other segment". Every
// rule matches all topics of a class or none, so a class's representative
// decides for the whole class.
type explorer struct {
	p       *Policy
	id      Identity
	pat     []string   // the pattern's segments
	hash    bool       // the pattern ends with '#'
	rules   [][]string // segments of every rule that can decide
	fresh   string     // a segment no rule names
	prefix  []string
	steps   int
	allowed bool
	denied  bool

	example      verdict // the first denied representative
	exampleTopic string
}

func (p *Policy) newExplorer(id Identity, pattern string) *explorer {
	x := &explorer{p: p, id: id, pat: strings.Split(pattern, ".")}
	x.hash = x.pat[len(x.pat)-1] == "#"
	literals := make(map[string]bool)
	add := func(r *Rule) {
		segs := strings.Split(r.Pattern, ".")
		x.rules = append(x.rules, segs)
		for _, s := range segs {
			literals[s] = true
		}
	}
	for _, r := range p.topicRules {
		add(r)
	}
	if c := p.comps[id.grantee()]; c != nil {
		for _, r := range c.rules {
			if r.Action == Subscribe {
				add(r)
			}
		}
	}
	x.fresh = freshSegment(literals)
	return x
}

// freshSegment returns a short valid segment not in taken.
func freshSegment(taken map[string]bool) string {
	for _, s := range strings.Split("x y z q a b c d e f g h i j k l m n o p r s t u v w", " ") {
		if !taken[s] {
			return s
		}
	}
	for i := 0; ; i++ {
		if s := "x" + strconv.Itoa(i); !taken[s] {
			return s
		}
	}
}

// visit explores the topics whose first d segments are x.prefix[:d], given
// the rules still able to match them; it returns true to stop.
func (x *explorer) visit(d int, live [][]string) bool {
	if x.steps++; x.steps > maxExplore {
		return true
	}
	if d > 0 && x.canEnd(d) && x.evaluate(d) {
		return true
	}
	if d == topic.MaxSegments || (!x.hash && d == len(x.pat)) {
		return false
	}
	cands := []string{x.segment(d)}
	if cands[0] == "" {
		cands = x.candidates(d, live)
	}
	for _, c := range cands {
		var next [][]string
		for _, r := range live {
			if len(r) > d && (r[d] == c || r[d] == "+" || r[d] == "#") {
				next = append(next, r)
			}
		}
		x.prefix = append(x.prefix[:d], c)
		if x.visit(d+1, next) {
			return true
		}
	}
	return false
}

// canEnd reports whether the pattern matches topics of d segments.
func (x *explorer) canEnd(d int) bool {
	if x.hash {
		return d >= len(x.pat)-1
	}
	return d == len(x.pat)
}

// segment returns the pattern's literal segment d, or "" for a wildcard.
func (x *explorer) segment(d int) string {
	if d >= len(x.pat) || x.pat[d] == "+" || x.pat[d] == "#" {
		return ""
	}
	return x.pat[d]
}

// candidates returns the literals live rules name at position d, sorted,
// then the fresh segment. A wildcard first segment never matches a
// reserved "$" topic, so "$" literals are left out there.
func (x *explorer) candidates(d int, live [][]string) []string {
	var cands []string
	for _, r := range live {
		if len(r) <= d || r[d] == "+" || r[d] == "#" || (d == 0 && topic.IsReserved(r[d])) {
			continue
		}
		cands = append(cands, r[d])
	}
	slices.Sort(cands)
	return append(slices.Compact(cands), x.fresh)
}

// evaluate decides the representative of d segments; it returns true once
// both an allowed and a denied topic were seen.
func (x *explorer) evaluate(d int) bool {
	t := strings.Join(x.prefix[:d], ".")
	if topic.Validate(t) != nil { // too long: no topic of this class exists
		return false
	}
	v := x.p.decide(x.id, Subscribe, t)
	if v.allowed() {
		x.allowed = true
	} else if !x.denied {
		x.denied, x.example, x.exampleTopic = true, v, t
	}
	return x.allowed && x.denied
}
