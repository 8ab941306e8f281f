package acl

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// testExe and testTokenFile are the absolute paths testPolicyYAML names.
var (
	testExe       = testAbs("/usr/bin/procmond")
	testTokenFile = testAbs("/run/eventbus/agent.token")
)

// testAbs returns the Unix absolute path p as an absolute path of this OS:
// p itself, or on Windows p on drive C: ("C:\usr\bin\procmond").
func testAbs(p string) string {
	if runtime.GOOS == "windows" {
		return "C:" + filepath.FromSlash(p)
	}
	return p
}

// testPolicyYAML exercises every field; tests share it.
var testPolicyYAML = `default_access: restricted
topics:
  - pattern: events.+.anomaly
    access: public
  - pattern: control.health.#
    access: public
  - pattern: control.collector.lifecycle
    access: privileged
  - pattern: control.collector.config
    access: privileged
  - pattern: control.agent.policy
    access: privileged
components:
  procmond:
    uids: [0]
    gids: [0]
    executables: ['` + testExe + `']
    publish: [events.process.#, control.collector.registration]
    subscribe: [control.collector.task.process.#, control.collector.config]
    deny_publish: [events.process.batch]
  netmond:
    uids: [0, 1000]
    sids: [S-1-5-21-1-2-3-1001]
    publish: [events.network.#]
    subscribe: [events.network.#, control.collector.lifecycle]
agent:
  token_file: '` + testTokenFile + `'
`

func mustParse(t testing.TB, yaml string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name          string
		yaml          string
		defaultAccess Level
		topicRules    int
		components    []string
		tokenFile     string
	}{
		{name: "empty", yaml: "", defaultAccess: Restricted, components: []string{"agent"}},
		{name: "comment only", yaml: "# nothing\n", defaultAccess: Restricted, components: []string{"agent"}},
		{name: "null sections", yaml: "topics:\ncomponents:\nagent:\n", defaultAccess: Restricted, components: []string{"agent"}},
		{name: "public default", yaml: "default_access: public\n", defaultAccess: Public, components: []string{"agent"}},
		{name: "full", yaml: testPolicyYAML, defaultAccess: Restricted, topicRules: 5,
			components: []string{"agent", "netmond", "procmond"}, tokenFile: testTokenFile},
		{name: "flow style", yaml: `topics: [{pattern: "a.#", access: privileged}]
components: {c1: {publish: ["#"], gids: [], deny_subscribe: [a.b]}}
`, defaultAccess: Restricted, topicRules: 1, components: []string{"agent", "c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.yaml)
			if got := p.DefaultAccess(); got != tt.defaultAccess {
				t.Errorf("DefaultAccess() = %v; want %v", got, tt.defaultAccess)
			}
			if got := len(p.topicRules); got != tt.topicRules {
				t.Errorf("topic rules = %d; want %d", got, tt.topicRules)
			}
			if got := p.Components(); !slices.Equal(got, tt.components) {
				t.Errorf("Components() = %v; want %v", got, tt.components)
			}
			if got := p.TokenFile(); got != tt.tokenFile {
				t.Errorf("TokenFile() = %q; want %q", got, tt.tokenFile)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		line     int
		field    string
		mentions []string
	}{
		{name: "unknown top field", yaml: "default_access: public\nbogus: 1\n", line: 2, field: "bogus",
			mentions: []string{"test.yaml", "line 2", "unknown field"}},
		{name: "unknown component field", yaml: "components:\n  procmond:\n    uids: [0]\n    publsh: [a]\n", line: 4,
			field: "components.procmond.publsh", mentions: []string{"unknown field", "publish"}},
		{name: "unknown topic field", yaml: "topics:\n  - pattern: a\n    acess: public\n", line: 3, field: "topics[0].acess"},
		{name: "unknown agent field", yaml: "agent:\n  token: x\n", line: 2, field: "agent.token"},
		{name: "bad topic pattern", yaml: "topics:\n  - pattern: events.*\n    access: public\n", line: 2,
			field: "topics[0].pattern", mentions: []string{"'*' is not a wildcard"}},
		{name: "bad grant pattern", yaml: "components:\n  c:\n    subscribe: [a.b, a.#.c]\n", line: 3,
			field: "components.c.subscribe[1]", mentions: []string{"'#' must be the last segment"}},
		{name: "bad access level", yaml: "topics:\n  - pattern: a\n    access: secret\n", line: 3,
			field: "topics[0].access", mentions: []string{`"secret" is not one of public, restricted, privileged`}},
		{name: "bad default access", yaml: "\ndefault_access: Public\n", line: 2, field: "default_access"},
		{name: "missing access", yaml: "topics:\n  - pattern: a\n", line: 2, field: "topics[0]", mentions: []string{"missing access"}},
		{name: "missing pattern", yaml: "topics:\n  - access: public\n", line: 2, field: "topics[0]", mentions: []string{"missing pattern"}},
		{name: "duplicate topic rule", yaml: "topics:\n  - {pattern: a, access: public}\n  - {pattern: a, access: privileged}\n",
			line: 3, field: "topics[1]", mentions: []string{"line 2"}},
		{name: "allow and deny", yaml: "components:\n  c:\n    publish: [a.#]\n    deny_publish: [a.#]\n", line: 4,
			field: "components.c.deny_publish[0]", mentions: []string{"already listed for publish at line 3"}},
		{name: "negative uid", yaml: "components:\n  c:\n    uids: [-1]\n", line: 3, field: "components.c.uids[0]"},
		{name: "text gid", yaml: "components:\n  c:\n    gids: [wheel]\n", line: 3, field: "components.c.gids[0]"},
		{name: "sid too short", yaml: "components:\n  c:\n    sids: [S-1-5]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{`"S-1-5" is not a SID (too few parts)`, "e.g. S-1-5-18"}},
		{name: "sid without S", yaml: "components:\n  c:\n    sids: [1-5-18-1]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{"does not begin with S-"}},
		{name: "sid revision", yaml: "components:\n  c:\n    sids: [S-2-5-18]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{"revision is not 1"}},
		{name: "sid not a number", yaml: "components:\n  c:\n    sids: [S-1-5-21-x]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{`"x" is not a number`}},
		{name: "sid empty part", yaml: "components:\n  c:\n    sids: [S-1-5--18]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{`"" is not a number`}},
		{name: "sid signed part", yaml: "components:\n  c:\n    sids: [S-1-5-+18]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{`"+18" is not a number`}},
		{name: "sid part too big", yaml: "components:\n  c:\n    sids: [S-1-5-4294967296]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{"0 to 4294967295"}},
		{name: "sid too long", yaml: "components:\n  c:\n    sids: [S-1-5" + strings.Repeat("-1", 16) + "]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{"more than 15 sub-authorities"}},
		{name: "sid not a scalar", yaml: "components:\n  c:\n    sids: [[S-1-5-18]]\n", line: 3,
			field: "components.c.sids[0]", mentions: []string{"want a SID"}},
		{name: "sids not a list", yaml: "components:\n  c:\n    sids: S-1-5-18\n", line: 3,
			field: "components.c.sids", mentions: []string{"want a list"}},
		{name: "relative executable", yaml: "components:\n  c:\n    executables: [bin/c]\n", line: 3,
			field: "components.c.executables[0]", mentions: []string{"not an absolute path"}},
		{name: "bad component name", yaml: "components:\n  Proc.Mond:\n    uids: [0]\n", line: 2, field: "components.Proc.Mond"},
		{name: "list wanted", yaml: "components:\n  c:\n    publish: events.#\n", line: 3, field: "components.c.publish",
			mentions: []string{"want a list"}},
		{name: "duplicate key", yaml: "default_access: public\ndefault_access: restricted\n", line: 2, field: "default_access",
			mentions: []string{"given twice"}},
		{name: "duplicate component", yaml: "components:\n  c: {}\n  c: {}\n", line: 3, field: "components.c"},
		{name: "the broker's component", yaml: "components:\n  broker:\n    uids: [0]\n", line: 2, field: "components.broker",
			mentions: []string{"the broker's own"}},
		{name: "relative token file", yaml: "agent:\n  token_file: agent.token\n", line: 2, field: "agent.token_file"},
		{name: "not a mapping", yaml: "- a\n- b\n", line: 1},
		{name: "alias", yaml: "components:\n  a: &x {uids: [0]}\n  b: *x\n", line: 3, mentions: []string{"aliases"}},
		{name: "yaml syntax", yaml: "topics: [\n  {pattern: a\n", mentions: []string{"test.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.yaml))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v; want a *ParseError", err)
			}
			if tt.line != 0 && pe.Line != tt.line {
				t.Errorf("Line = %d; want %d (%v)", pe.Line, tt.line, err)
			}
			if tt.field != "" && pe.Field != tt.field {
				t.Errorf("Field = %q; want %q (%v)", pe.Field, tt.field, err)
			}
			for _, m := range append(tt.mentions, "acl: policy test.yaml") {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(testPolicyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := p.Source(); got != path {
		t.Errorf("Source() = %q; want %q", got, path)
	}
	_, r := p.LevelOf("events.process.anomaly")
	if want := path + ":3"; r == nil || r.Source != want {
		t.Errorf("rule source = %v; want %s", r, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v; want os.ErrNotExist", err)
	}
}

func TestAgentDefaultGrants(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		topic   string
		action  Action
		allowed bool
	}{
		{"absent agent gets everything", "", "x.y", Publish, true},
		{"absent agent subscribes everything", "", "x.y", Subscribe, true},
		{"agent without lists", "components:\n  agent:\n    uids: [0]\n", "x.y", Subscribe, true},
		{"agent publish list limits publish", "components:\n  agent:\n    publish: [a.#]\n", "x.y", Publish, false},
		{"agent publish list keeps subscribe", "components:\n  agent:\n    publish: [a.#]\n", "x.y", Subscribe, true},
		{"agent deny", "components:\n  agent:\n    deny_subscribe: [x.#]\n", "x.y", Subscribe, false},
		{"explicit empty list", "components:\n  agent:\n    publish: []\n", "x.y", Publish, false},
	}
	agent := Identity{Component: AgentComponent, Agent: true, Registered: true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mustParse(t, tt.yaml).Check(agent, tt.action, tt.topic)
			if got := err == nil; got != tt.allowed {
				t.Errorf("Check(agent, %v, %s) = %v; want allowed %v", tt.action, tt.topic, err, tt.allowed)
			}
		})
	}
}

func TestCanonicalSID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"S-1-5-18", "S-1-5-18"},
		{"s-1-5-18", "S-1-5-18"},
		{"S-1-05-018", "S-1-5-18"},
		{"S-1-1-0", "S-1-1-0"},
		{"S-1-5-21-1004336348-1177238915-682003330-1001", "S-1-5-21-1004336348-1177238915-682003330-1001"},
		{"S-1-5" + strings.Repeat("-4294967295", 15), "S-1-5" + strings.Repeat("-4294967295", 15)},
	}
	for _, tt := range tests {
		if got, err := canonicalSID(tt.in); err != nil || got != tt.want {
			t.Errorf("canonicalSID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "S", "S-1", "S-1-5", "S-1-4294967296-1", "S-1-5-18-", " S-1-5-18", "S-1-5-18 ", "SID-1-5-18", "S-1-0x5-18"} {
		if got, err := canonicalSID(bad); err == nil {
			t.Errorf("canonicalSID(%q) = %q, nil; want an error", bad, got)
		}
	}
}

// TestParseSIDs: sids are kept in canonical form, the form PeerOf reports.
func TestParseSIDs(t *testing.T) {
	p := mustParse(t, "components:\n  c:\n    sids: [s-1-5-018, S-1-5-21-7-8-9-500]\n")
	want := []string{"S-1-5-18", "S-1-5-21-7-8-9-500"}
	if got := p.comps["c"].sids; !slices.Equal(got, want) {
		t.Errorf("sids = %v; want %v", got, want)
	}
}
