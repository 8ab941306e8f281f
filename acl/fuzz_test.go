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

func TestSDDLACESIDs(t *testing.T) {
	tests := []struct {
		sddl string
		want []string // nil with err
		err  bool
	}{
		{"D:", nil, false},
		{"D:PAI", nil, false},
		{"D:P(A;;FA;;;SY)(A;OICI;0x1200a9;;;S-1-5-21-1-2-3-1001)", []string{"SY", "S-1-5-21-1-2-3-1001"}, false},
		{"D:(D;;FA;;;WD)", []string{"WD"}, false},
		{"O:SYD:(A;;FA;;;SY)", nil, true},             // not a lone DACL
		{"D:(A;;FA;;;SY", nil, true},                  // unterminated
		{"D:(A;;FA;;SY)", nil, true},                  // five fields
		{"D:(XA;;FA;;;WD;(@User.x == 1))", nil, true}, // conditional ACE
		{"D:(A;;FA;;;SY)x", nil, true},                // trailing junk
	}
	for _, tt := range tests {
		got, err := sddlACESIDs(tt.sddl)
		if (err != nil) != tt.err || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("sddlACESIDs(%q) = %q, %v; want %q, error %t", tt.sddl, got, err, tt.want, tt.err)
		}
	}
}

// FuzzSDDLACESIDs: the SDDL reader never panics, and what it accepts has
// one SID per parenthesized ACE, each free of SDDL's delimiters.
func FuzzSDDLACESIDs(f *testing.F) {
	f.Add("D:P(A;;FA;;;SY)(A;OICI;FA;;;BA)")
	f.Add("D:(A;;0x1f01ff;;;S-1-1-0)")
	f.Add("D:((;;;;;)")
	f.Fuzz(func(t *testing.T, sddl string) {
		sids, err := sddlACESIDs(sddl)
		if err != nil {
			return
		}
		if n := strings.Count(sddl, "("); n != len(sids) {
			t.Fatalf("sddlACESIDs(%q) = %d SIDs for %d ACEs", sddl, len(sids), n)
		}
		for _, s := range sids {
			if strings.ContainsAny(s, "();") {
				t.Fatalf("sddlACESIDs(%q) returned SID %q holding a delimiter", sddl, s)
			}
		}
	})
}
