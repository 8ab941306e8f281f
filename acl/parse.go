package acl

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"daemoneye.dev/eventbus/topic"
)

// maxPolicyBytes bounds a policy file: it is read whole.
const maxPolicyBytes = 1 << 20

// ParseError is a policy file problem, with the file, line and field at
// fault where known.
type ParseError struct {
	File  string
	Line  int    // 0 when unknown
	Field string // e.g. "components.procmond.uids[1]"; "" when unknown
	Msg   string
}

// Error returns the message.
func (e *ParseError) Error() string {
	switch {
	case e.Line > 0 && e.Field != "":
		return fmt.Sprintf("acl: policy %s line %d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("acl: policy %s line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("acl: policy %s: %s", e.File, e.Msg)
}

// Load reads and parses the policy file at path; see [Parse].
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("acl: policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("acl: policy: %w", err)
	}
	if len(data) > maxPolicyBytes {
		return nil, &ParseError{File: path, Msg: fmt.Sprintf("larger than %d bytes", maxPolicyBytes)}
	}
	return Parse(path, data)
}

// Parse parses a YAML policy; name labels errors and rules' sources.
// Unknown fields, duplicate keys or patterns, invalid patterns and levels,
// YAML aliases and malformed values are refused with a [*ParseError] naming
// the line and field. An empty document is the policy with no rules:
// everything restricted, no components but the agent.
//
//	default_access: restricted        # for topics no rule covers
//	topics:
//	  - pattern: events.process.anomaly
//	    access: public                # public, restricted or privileged
//	components:
//	  procmond:
//	    uids: [0]                     # each list, where given, must contain the peer's
//	    gids: []                      # (uids and gids on Unix, sids on Windows)
//	    sids: [S-1-5-18]
//	    executables: [/usr/bin/procmond]
//	    publish: [events.process.#]   # allow rules
//	    subscribe: [control.collector.config]
//	    deny_publish: [events.process.batch]  # deny rules
//	    deny_subscribe: []
//	agent:
//	  token_file: /run/eventbus/agent.token
func Parse(name string, data []byte) (*Policy, error) {
	ps := &parser{file: name, spec: &policySpec{source: name, defaultAccess: Restricted}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, ps.yamlError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != 0 && root.Kind != yaml.DocumentNode && !isNull(root) {
		if err := noAliases(ps, root); err != nil {
			return nil, err
		}
		if err := ps.fields(root, "", map[string]func(*yaml.Node, string) error{
			"default_access": ps.defaultAccess,
			"topics":         ps.topics,
			"components":     ps.components,
			"agent":          ps.agent,
		}); err != nil {
			return nil, err
		}
	}
	return ps.spec.build()
}

type parser struct {
	file string
	spec *policySpec
}

func (ps *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	return &ParseError{File: ps.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// yamlError turns a YAML syntax error into a ParseError with its line.
func (ps *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return &ParseError{File: ps.file, Line: line, Msg: msg}
}

func noAliases(ps *parser, n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return ps.errf(n, "", "YAML aliases are not supported in a policy")
	}
	for _, c := range n.Content {
		if err := noAliases(ps, c); err != nil {
			return err
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields walks a mapping, refusing unknown and repeated keys.
func (ps *parser) fields(n *yaml.Node, path string, handlers map[string]func(*yaml.Node, string) error) error {
	if n.Kind != yaml.MappingNode {
		return ps.errf(n, path, "want a mapping of %s", strings.Join(slices.Sorted(maps.Keys(handlers)), ", "))
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := join(path, k.Value)
		h, ok := handlers[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode:
			return ps.errf(k, path, "keys must be plain names")
		case !ok:
			return ps.errf(k, field, "unknown field (known: %s)", strings.Join(slices.Sorted(maps.Keys(handlers)), ", "))
		case seen[k.Value]:
			return ps.errf(k, field, "given twice")
		}
		seen[k.Value] = true
		if err := h(v, field); err != nil {
			return err
		}
	}
	return nil
}

// scalar returns a non-null scalar's text.
func (ps *parser) scalar(n *yaml.Node, field, want string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) || n.Value == "" {
		return "", ps.errf(n, field, "want %s", want)
	}
	return n.Value, nil
}

// list calls f for each element of a sequence; null is an empty list.
func (ps *parser) list(n *yaml.Node, field string, f func(*yaml.Node, string) error) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return ps.errf(n, field, "want a list, e.g. [a, b]")
	}
	for i, e := range n.Content {
		if err := f(e, fmt.Sprintf("%s[%d]", field, i)); err != nil {
			return err
		}
	}
	return nil
}

func (ps *parser) level(n *yaml.Node, field string) (Level, error) {
	s, err := ps.scalar(n, field, "an access level: public, restricted or privileged")
	if err != nil {
		return 0, err
	}
	l, err := ParseLevel(s)
	if err != nil {
		return 0, ps.errf(n, field, "%v", err)
	}
	return l, nil
}

func (ps *parser) pattern(n *yaml.Node, field string) (string, error) {
	s, err := ps.scalar(n, field, "a topic pattern")
	if err != nil {
		return "", err
	}
	if err := topic.ValidatePattern(s); err != nil {
		return "", ps.errf(n, field, "%v", err)
	}
	return s, nil
}

func (ps *parser) source(n *yaml.Node) string { return ps.file + ":" + strconv.Itoa(n.Line) }

func (ps *parser) defaultAccess(n *yaml.Node, field string) (err error) {
	ps.spec.defaultAccess, err = ps.level(n, field)
	return err
}

func (ps *parser) topics(n *yaml.Node, field string) error {
	lines := make(map[string]int) // pattern -> line, to refuse repeats
	return ps.list(n, field, func(e *yaml.Node, field string) error {
		r := &Rule{Kind: TopicRule, Source: ps.source(e)}
		err := ps.fields(e, field, map[string]func(*yaml.Node, string) error{
			"pattern": func(v *yaml.Node, f string) (err error) { r.Pattern, err = ps.pattern(v, f); return err },
			"access":  func(v *yaml.Node, f string) (err error) { r.Access, err = ps.level(v, f); return err },
		})
		switch {
		case err != nil:
			return err
		case r.Pattern == "":
			return ps.errf(e, field, "missing pattern")
		case r.Access == 0:
			return ps.errf(e, field, "missing access (public, restricted or privileged)")
		case lines[r.Pattern] != 0:
			return ps.errf(e, field, "pattern %s already has a rule at line %d", r.Pattern, lines[r.Pattern])
		}
		lines[r.Pattern] = e.Line
		ps.spec.topics = append(ps.spec.topics, r)
		return nil
	})
}

func (ps *parser) components(n *yaml.Node, field string) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return ps.errf(n, field, "want a mapping of component names to their entries")
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, f := k.Value, join(field, k.Value)
		switch {
		case k.Kind != yaml.ScalarNode || !validComponent(name):
			return ps.errf(k, f, "invalid component name: want 1-64 bytes of a-z 0-9 - _")
		case seen[name]:
			return ps.errf(k, f, "given twice")
		case name == BrokerComponent:
			return ps.errf(k, f, "the component %q is the broker's own: no peer may claim it", BrokerComponent)
		}
		seen[name] = true
		cs, err := ps.component(name, v, f)
		if err != nil {
			return err
		}
		ps.spec.comps = append(ps.spec.comps, cs)
	}
	return nil
}

func (ps *parser) component(name string, n *yaml.Node, field string) (*componentSpec, error) {
	cs := &componentSpec{name: name}
	if isNull(n) {
		return cs, nil
	}
	listed := make(map[[2]string]int) // (action, pattern) -> line
	grants := func(kind RuleKind, a Action) func(*yaml.Node, string) error {
		return func(v *yaml.Node, f string) error {
			cs.hasPublish = cs.hasPublish || (kind == AllowRule && a == Publish)
			cs.hasSub = cs.hasSub || (kind == AllowRule && a == Subscribe)
			return ps.list(v, f, func(e *yaml.Node, f string) error {
				pat, err := ps.pattern(e, f)
				if err != nil {
					return err
				}
				key := [2]string{a.String(), pat}
				if line := listed[key]; line != 0 {
					return ps.errf(e, f, "%s is already listed for %s at line %d", pat, a, line)
				}
				listed[key] = e.Line
				cs.rules = append(cs.rules, &Rule{Kind: kind, Pattern: pat, Action: a, Source: ps.source(e)})
				return nil
			})
		}
	}
	err := ps.fields(n, field, map[string]func(*yaml.Node, string) error{
		"uids":           func(v *yaml.Node, f string) (err error) { cs.uids, err = ps.ids(v, f, "uid"); return err },
		"gids":           func(v *yaml.Node, f string) (err error) { cs.gids, err = ps.ids(v, f, "gid"); return err },
		"sids":           func(v *yaml.Node, f string) (err error) { cs.sids, err = ps.sids(v, f); return err },
		"executables":    func(v *yaml.Node, f string) (err error) { cs.executables, err = ps.paths(v, f); return err },
		"publish":        grants(AllowRule, Publish),
		"subscribe":      grants(AllowRule, Subscribe),
		"deny_publish":   grants(DenyRule, Publish),
		"deny_subscribe": grants(DenyRule, Subscribe),
	})
	return cs, err
}

func (ps *parser) ids(n *yaml.Node, field, what string) ([]uint32, error) {
	var ids []uint32
	err := ps.list(n, field, func(e *yaml.Node, f string) error {
		v, err := strconv.ParseUint(e.Value, 10, 32)
		if e.Kind != yaml.ScalarNode || e.Tag != "!!int" || err != nil {
			return ps.errf(e, f, "%q is not a %s (0 to %d)", e.Value, what, uint32(1<<32-1))
		}
		ids = append(ids, uint32(v))
		return nil
	})
	return ids, err
}

// sids reads Windows security identifiers, in canonical form.
func (ps *parser) sids(n *yaml.Node, field string) ([]string, error) {
	var sids []string
	err := ps.list(n, field, func(e *yaml.Node, f string) error {
		s, err := ps.scalar(e, f, "a SID such as S-1-5-18")
		if err != nil {
			return err
		}
		sid, err := canonicalSID(s)
		if err != nil {
			return ps.errf(e, f, "%v", err)
		}
		sids = append(sids, sid)
		return nil
	})
	return sids, err
}

func (ps *parser) paths(n *yaml.Node, field string) ([]string, error) {
	var paths []string
	err := ps.list(n, field, func(e *yaml.Node, f string) error {
		p, err := ps.scalar(e, f, "an absolute executable path")
		if err != nil {
			return err
		}
		if !filepath.IsAbs(p) {
			return ps.errf(e, f, "%q is not an absolute path", p)
		}
		paths = append(paths, filepath.Clean(p))
		return nil
	})
	return paths, err
}

func (ps *parser) agent(n *yaml.Node, field string) error {
	if isNull(n) {
		return nil
	}
	return ps.fields(n, field, map[string]func(*yaml.Node, string) error{
		"token_file": func(v *yaml.Node, f string) error {
			p, err := ps.scalar(v, f, "an absolute path")
			if err == nil && !filepath.IsAbs(p) {
				err = ps.errf(v, f, "%q is not an absolute path", p)
			}
			ps.spec.tokenFile = filepath.Clean(p)
			return err
		},
	})
}
