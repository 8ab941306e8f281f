package acl

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to the policy parser: it must never
// panic, an error must name the source, and an accepted policy must answer
// checks for every kind of identity.
func FuzzParse(f *testing.F) {
	f.Add([]byte(testPolicyYAML))
	f.Add([]byte("default_access: public\n"))
	f.Add([]byte("topics:\n  events.#: restricted\n  control.+.x: privileged\ncomponents:\n  c:\n    uids: [1]\n    publish: [events.#]\n"))
	f.Add([]byte("a: &x 1\nb: *x\n"))
	f.Add([]byte("components:\n  agent:\n    token_file: /t\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the source", err)
			}
			return
		}
		for _, id := range []Identity{{}, {Component: "agent", Agent: true}, {Component: "c"}} {
			for _, topicName := range []string{"events.a", "control.x.y", "#"} {
				p.Check(id, Publish, topicName)
				p.Explain(id, Subscribe, topicName)
			}
			p.CheckSubscribe(id, "#")
			p.CheckSubscribe(id, "events.+.x")
		}
		_ = p.String()
	})
}
