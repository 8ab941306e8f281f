package correlation

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewIDDistinctAndTimeOrdered(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	prev := ""
	for i := range n {
		id := NewID()
		if seen[id] {
			t.Fatalf("NewID #%d = %q; repeats an earlier id", i, id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("NewID #%d = %q; want > previous %q", i, id, prev)
		}
		prev = id
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
			t.Fatalf("NewID = %q: parse err %v, version %v; want a UUIDv7", id, err, u.Version())
		}
	}
}

func TestNew(t *testing.T) {
	before := time.Now()
	m := New(WithStage("enumeration"), WithSource("agent"), WithTag("analyst", "alice"), WithTag("case", "INC-1"))
	if m.CorrelationID == "" || m.RootID != m.CorrelationID {
		t.Errorf("New: correlation %q, root %q; want equal non-empty ids", m.CorrelationID, m.RootID)
	}
	if m.ParentID != "" || m.Sequence != 0 {
		t.Errorf("New: parent %q, sequence %d; want none", m.ParentID, m.Sequence)
	}
	if m.Stage != "enumeration" || m.SourceProcess != "agent" {
		t.Errorf("New: stage %q, source %q; want enumeration, agent", m.Stage, m.SourceProcess)
	}
	if want := map[string]string{"analyst": "alice", "case": "INC-1"}; !maps.Equal(m.Tags, want) {
		t.Errorf("New: tags %v; want %v", m.Tags, want)
	}
	if m.StartedAt.Before(before) || m.StartedAt.After(time.Now()) {
		t.Errorf("New: StartedAt %v; want now", m.StartedAt)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("New().Validate() = %v; want nil", err)
	}
	at := time.Unix(1700000000, 0)
	if got := New(WithStartedAt(at)).StartedAt; !got.Equal(at) {
		t.Errorf("New(WithStartedAt(%v)).StartedAt = %v", at, got)
	}
}

func TestNewChild(t *testing.T) {
	parent := New(WithStage("enumeration"), WithSource("agent"), WithTag("case", "INC-1"))
	parent.Sequence = 7
	child := parent.NewChild()
	grandchild := child.NewChild(WithStage("integrity"), WithTag("parent_stage", "enumeration"))

	checks := []struct {
		name      string
		got, want any
	}{
		{"child.ParentID", child.ParentID, parent.CorrelationID},
		{"child.RootID", child.RootID, parent.RootID},
		{"child.Stage", child.Stage, "enumeration"},
		{"child.SourceProcess", child.SourceProcess, "agent"},
		{"child.Sequence", child.Sequence, uint64(0)},
		{"child.Tags", fmt.Sprint(child.Tags), fmt.Sprint(parent.Tags)},
		{"grandchild.ParentID", grandchild.ParentID, child.CorrelationID},
		{"grandchild.RootID", grandchild.RootID, parent.RootID},
		{"grandchild.Stage", grandchild.Stage, "integrity"},
		{"grandchild.Tags", fmt.Sprint(grandchild.Tags), "map[case:INC-1 parent_stage:enumeration]"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if child.CorrelationID == parent.CorrelationID || child.CorrelationID <= parent.CorrelationID {
		t.Errorf("child id %q; want a new id after the parent's %q", child.CorrelationID, parent.CorrelationID)
	}
	// The tags are a copy: changing one side leaves the other alone.
	child.Tags["case"] = "changed"
	if parent.Tags["case"] != "INC-1" {
		t.Errorf("parent tag after changing the child's = %q; want INC-1 (tags aliased)", parent.Tags["case"])
	}
	if _, ok := child.Tags["parent_stage"]; ok {
		t.Errorf("child has grandchild's tag parent_stage; tags aliased")
	}
	if got := (Metadata{CorrelationID: "a", RootID: "a"}).NewChild().Tags; got != nil {
		t.Errorf("child of untagged metadata has tags %v; want nil", got)
	}
}

func TestValidate(t *testing.T) {
	valid := func() Metadata { return Metadata{CorrelationID: "c", RootID: "r"} }
	tags := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = "v"
		}
		return m
	}
	s := strings.Repeat
	tests := []struct {
		name    string
		edit    func(*Metadata)
		wantErr string // "" for valid
	}{
		{"minimal", func(*Metadata) {}, ""},
		{"empty correlation id", func(m *Metadata) { m.CorrelationID = "" }, "correlation: correlation id empty"},
		{"empty root id", func(m *Metadata) { m.RootID = "" }, "correlation: root id empty"},
		{"correlation id at limit", func(m *Metadata) { m.CorrelationID = s("c", 256) }, ""},
		{"correlation id over", func(m *Metadata) { m.CorrelationID = s("c", 257) }, "correlation: correlation id too long: 257 bytes, limit 256"},
		{"root id at limit", func(m *Metadata) { m.RootID = s("r", 256) }, ""},
		{"root id over", func(m *Metadata) { m.RootID = s("r", 257) }, "correlation: root id too long: 257 bytes, limit 256"},
		{"parent id at limit", func(m *Metadata) { m.ParentID = s("p", 256) }, ""},
		{"parent id over", func(m *Metadata) { m.ParentID = s("p", 257) }, "correlation: parent id too long: 257 bytes, limit 256"},
		{"own parent", func(m *Metadata) { m.ParentID = "c" }, "correlation: parent id equals correlation id"},
		{"stage at limit", func(m *Metadata) { m.Stage = s("s", 128) }, ""},
		{"stage over", func(m *Metadata) { m.Stage = s("s", 129) }, "correlation: stage too long: 129 bytes, limit 128"},
		{"source at limit", func(m *Metadata) { m.SourceProcess = s("p", 128) }, ""},
		{"source over", func(m *Metadata) { m.SourceProcess = s("p", 129) }, "correlation: source process too long: 129 bytes, limit 128"},
		{"64 tags", func(m *Metadata) { m.Tags = tags(64) }, ""},
		{"65 tags", func(m *Metadata) { m.Tags = tags(65) }, "correlation: tag count too large: 65, limit 64"},
		{"tag key at limit", func(m *Metadata) { m.Tags = map[string]string{s("k", 128): "v"} }, ""},
		{"tag key over", func(m *Metadata) { m.Tags = map[string]string{s("k", 129): "v"} }, "correlation: tag key too long: 129 bytes, limit 128"},
		{"empty tag key", func(m *Metadata) { m.Tags = map[string]string{"": "v"} }, "correlation: tag key empty"},
		{"tag value at limit", func(m *Metadata) { m.Tags = map[string]string{"k": s("v", 1024)} }, ""},
		{"tag value over", func(m *Metadata) { m.Tags = map[string]string{"k": s("v", 1025)} }, `correlation: tag "k" value too long: 1025 bytes, limit 1024`},
		{"empty tag value", func(m *Metadata) { m.Tags = map[string]string{"k": ""} }, ""},
		{"bad UTF-8 stage", func(m *Metadata) { m.Stage = "\xff" }, "correlation: stage not valid UTF-8"},
		{"bad UTF-8 tag value", func(m *Metadata) { m.Tags = map[string]string{"k": "\xff"} }, `correlation: tag "k" value not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.edit(&m)
			err := m.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate() = %v; want %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false; want true", err)
			}
		})
	}
}

func TestSequencer(t *testing.T) {
	s := NewSequencer(2)
	steps := []struct {
		id   string
		want uint64
	}{
		{"a", 1}, {"a", 2}, {"b", 1}, {"a", 3}, {"b", 2},
		{"c", 1}, // evicts a, the least recently used
		{"b", 3},
		{"a", 1}, // forgotten: starts again; evicts c
		{"c", 1},
	}
	for i, st := range steps {
		if got := s.Next(st.id); got != st.want {
			t.Fatalf("step %d: Next(%q) = %d; want %d", i, st.id, got, st.want)
		}
	}
	if got := s.Len(); got != 2 {
		t.Errorf("Len() = %d; want 2 (the bound)", got)
	}
	if got := s.Next("b"); got != 1 { // b was evicted by c
		t.Errorf("Next(b) after its eviction = %d; want 1", got)
	}
	if got := NewSequencer(0).max; got != DefaultSequencerSize {
		t.Errorf("NewSequencer(0) size = %d; want %d", got, DefaultSequencerSize)
	}
}

func TestSequencerConcurrent(t *testing.T) {
	s := NewSequencer(0)
	const workers, each = 8, 1000
	got := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				got[w] = append(got[w], s.Next("shared"))
			}
		})
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	for _, nums := range got {
		for _, n := range nums {
			if seen[n] {
				t.Fatalf("number %d handed out twice", n)
			}
			seen[n] = true
		}
	}
	for n := uint64(1); n <= workers*each; n++ {
		if !seen[n] {
			t.Fatalf("number %d never handed out; want 1..%d each once", n, workers*each)
		}
	}
}
