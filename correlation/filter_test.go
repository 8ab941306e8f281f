package correlation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func u64(v uint64) *uint64 { return &v }

// sample is the metadata most filter cases run against.
var sample = Metadata{
	CorrelationID: "c1", ParentID: "p1", RootID: "r1", Sequence: 5, Stage: "integrity",
	Tags: map[string]string{"case": "INC-1", "analyst": "alice"},
}

func TestFilterMatch(t *testing.T) {
	tests := []struct {
		name string
		f    Filter
		m    *Metadata
		want bool
	}{
		{"empty filter, metadata", Filter{}, &sample, true},
		{"empty filter, no metadata", Filter{}, nil, true},
		{"empty lists are empty", Filter{Stages: []string{}, RequiredTags: map[string]string{}}, nil, true},
		{"non-empty filter, no metadata", Filter{Stages: []string{"integrity"}}, nil, false},
		{"sequence range only, no metadata", Filter{MinSequence: u64(0)}, nil, false},

		{"correlation id in", Filter{CorrelationIDs: []string{"x", "c1"}}, &sample, true},
		{"correlation id out", Filter{CorrelationIDs: []string{"x"}}, &sample, false},
		{"parent id in", Filter{ParentIDs: []string{"p1"}}, &sample, true},
		{"parent id out", Filter{ParentIDs: []string{"c1"}}, &sample, false},
		{"parent id, none set", Filter{ParentIDs: []string{"p1"}}, &Metadata{CorrelationID: "c", RootID: "r"}, false},
		{"root id in", Filter{RootIDs: []string{"r1"}}, &sample, true},
		{"root id out", Filter{RootIDs: []string{"r2"}}, &sample, false},
		{"stage in", Filter{Stages: []string{"enumeration", "integrity"}}, &sample, true},
		{"stage out", Filter{Stages: []string{"enumeration"}}, &sample, false},

		{"required tags all present", Filter{RequiredTags: map[string]string{"case": "INC-1", "analyst": "alice"}}, &sample, true},
		{"required tag wrong value", Filter{RequiredTags: map[string]string{"case": "INC-2"}}, &sample, false},
		{"required tag missing", Filter{RequiredTags: map[string]string{"case": "INC-1", "host": "h"}}, &sample, false},
		{"required tag, untagged", Filter{RequiredTags: map[string]string{"case": "INC-1"}}, &Metadata{CorrelationID: "c", RootID: "r"}, false},
		{"any tag one matches", Filter{AnyTags: map[string]string{"case": "INC-9", "analyst": "alice"}}, &sample, true},
		{"any tag none matches", Filter{AnyTags: map[string]string{"case": "INC-9", "analyst": "bob"}}, &sample, false},
		{"any tag key only", Filter{AnyTags: map[string]string{"host": "INC-1"}}, &sample, false},

		{"min sequence equal", Filter{MinSequence: u64(5)}, &sample, true},
		{"min sequence above", Filter{MinSequence: u64(6)}, &sample, false},
		{"max sequence equal", Filter{MaxSequence: u64(5)}, &sample, true},
		{"max sequence below", Filter{MaxSequence: u64(4)}, &sample, false},
		{"sequence range inside", Filter{MinSequence: u64(1), MaxSequence: u64(9)}, &sample, true},
		{"sequence range single", Filter{MinSequence: u64(5), MaxSequence: u64(5)}, &sample, true},

		{"all criteria hold", Filter{
			CorrelationIDs: []string{"c1"}, ParentIDs: []string{"p1"}, RootIDs: []string{"r1"}, Stages: []string{"integrity"},
			RequiredTags: map[string]string{"case": "INC-1"}, AnyTags: map[string]string{"analyst": "alice"},
			MinSequence: u64(5), MaxSequence: u64(5),
		}, &sample, true},
		{"all but stage hold", Filter{
			CorrelationIDs: []string{"c1"}, RootIDs: []string{"r1"}, Stages: []string{"network"},
			RequiredTags: map[string]string{"case": "INC-1"},
		}, &sample, false},
		{"root and tag, tag fails", Filter{RootIDs: []string{"r1"}, RequiredTags: map[string]string{"case": "x"}}, &sample, false},
		{"stage and sequence, sequence fails", Filter{Stages: []string{"integrity"}, MaxSequence: u64(1)}, &sample, false},
		{"required and any, any fails", Filter{RequiredTags: map[string]string{"case": "INC-1"}, AnyTags: map[string]string{"analyst": "bob"}}, &sample, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(tt.m); got != tt.want {
				t.Errorf("Filter.Match = %v; want %v", got, tt.want)
			}
			c, err := tt.f.Compile()
			if err != nil {
				t.Fatalf("Compile() = %v", err)
			}
			if got := c.Match(tt.m); got != tt.want {
				t.Errorf("Compiled.Match = %v; want %v", got, tt.want)
			}
		})
	}
	var nilCompiled *Compiled
	if !nilCompiled.Match(nil) || !nilCompiled.Match(&sample) {
		t.Errorf("nil *Compiled does not match everything")
	}
}

func TestFilterCompileErrors(t *testing.T) {
	many := make([]string, MaxFilterValues+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	tests := []struct {
		name    string
		f       Filter
		wantErr string // "" for valid
	}{
		{"ids at limit", Filter{RootIDs: many[:MaxFilterValues]}, ""},
		{"too many ids", Filter{CorrelationIDs: many}, "correlation: filter correlation id count too large: 1025, limit 1024"},
		{"empty id", Filter{ParentIDs: []string{"a", ""}}, "correlation: filter parent id[1] empty"},
		{"long id", Filter{RootIDs: []string{strings.Repeat("r", 257)}}, "correlation: filter root id[0] too long: 257 bytes, limit 256"},
		{"long stage", Filter{Stages: []string{strings.Repeat("s", 129)}}, "correlation: filter stage[0] too long: 129 bytes, limit 128"},
		{"long required key", Filter{RequiredTags: map[string]string{strings.Repeat("k", 129): ""}}, "correlation: filter required tag key too long: 129 bytes, limit 128"},
		{"long any value", Filter{AnyTags: map[string]string{"k": strings.Repeat("v", 1025)}}, `correlation: filter any tag "k" value too long: 1025 bytes, limit 1024`},
		{"inverted range", Filter{MinSequence: u64(3), MaxSequence: u64(2)}, "correlation: filter sequence range empty: min 3 > max 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.Compile()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Compile() = %v; want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Compile() = %v; want %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
		})
	}
}

// TestFilterCompiledAgrees checks the compiled matcher against Filter.Match
// on random filters, with sets large enough to take the map path.
func TestFilterCompiledAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(n int) []string {
		if r.IntN(3) == 0 {
			return nil
		}
		out := make([]string, 1+r.IntN(n))
		for i := range out {
			out[i] = fmt.Sprint("v", r.IntN(24))
		}
		return out
	}
	tagMap := func() map[string]string {
		m := map[string]string{}
		for range r.IntN(3) {
			m[fmt.Sprint("k", r.IntN(3))] = fmt.Sprint("v", r.IntN(3))
		}
		return m
	}
	for i := range 5000 {
		f := Filter{CorrelationIDs: pick(20), ParentIDs: pick(3), RootIDs: pick(12), Stages: pick(2),
			RequiredTags: tagMap(), AnyTags: tagMap()}
		if r.IntN(3) == 0 {
			f.MinSequence = u64(uint64(r.IntN(4)))
		}
		if r.IntN(3) == 0 {
			f.MaxSequence = u64(4 + uint64(r.IntN(4)))
		}
		m := &Metadata{CorrelationID: fmt.Sprint("v", r.IntN(24)), ParentID: fmt.Sprint("v", r.IntN(24)),
			RootID: fmt.Sprint("v", r.IntN(24)), Stage: fmt.Sprint("v", r.IntN(24)), Sequence: uint64(r.IntN(9)), Tags: tagMap()}
		c, err := f.Compile()
		if err != nil {
			t.Fatalf("case %d: Compile(%+v) = %v", i, f, err)
		}
		if got, want := c.Match(m), f.Match(m); got != want {
			t.Fatalf("case %d: Compiled.Match = %v, Filter.Match = %v\nfilter %+v\nmetadata %+v", i, got, want, f, m)
		}
	}
}

func TestFilterMatchDoesNotAllocate(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprint("root-", i)
	}
	many[42] = "r1"
	f := Filter{RootIDs: many, Stages: []string{"integrity"}, RequiredTags: map[string]string{"case": "INC-1"},
		AnyTags: map[string]string{"analyst": "alice"}, MinSequence: u64(1)}
	c, err := f.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if got := testing.AllocsPerRun(1000, func() { c.Match(&sample) }); got != 0 {
		t.Errorf("Compiled.Match allocates %v times per call; want 0", got)
	}
	if got := testing.AllocsPerRun(1000, func() { f.Match(&sample) }); got != 0 {
		t.Errorf("Filter.Match allocates %v times per call; want 0", got)
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	roots := make([]string, 64)
	for i := range roots {
		roots[i] = NewID()
	}
	m := New(WithStage("integrity"), WithTag("case", "INC-1"), WithTag("analyst", "alice"),
		WithTag("host", "h1"), WithTag("pid", "4892"))
	m.RootID = roots[40]
	m.Sequence = 3
	cases := []struct {
		name string
		f    Filter
	}{
		{"empty", Filter{}},
		{"root", Filter{RootIDs: []string{m.RootID}}},
		{"roots64+stage+tags", Filter{RootIDs: roots, Stages: []string{"integrity"},
			RequiredTags: map[string]string{"case": "INC-1", "analyst": "alice"},
			AnyTags:      map[string]string{"pid": "4892"}, MinSequence: u64(1)}},
	}
	for _, bc := range cases {
		c, err := bc.f.Compile()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !c.Match(&m) {
					b.Fatal("no match")
				}
			}
		})
	}
}
