package correlation

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// at renders a time as milliseconds after base, "-" for zero.
func at(base, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("@%d", t.Sub(base).Milliseconds())
}

func (a Activity) render(base time.Time) string {
	return fmt.Sprintf("%s..%s %d/%d", at(base, a.FirstSeen), at(base, a.LastSeen), a.Events, a.Finals)
}

func renderState(base time.Time, s WorkflowState) []string {
	out := []string{fmt.Sprintf("workflow %s %s payload=%d untracked=%d", s.RootID, s.Activity.render(base), s.PayloadBytes, s.Untracked)}
	for _, st := range s.Stages {
		out = append(out, fmt.Sprintf("stage %s %s completed=%v%s", st.Name, st.Activity.render(base), st.Completed, at(base, st.CompletedAt)))
	}
	for _, c := range s.Correlations {
		out = append(out, fmt.Sprintf("corr %s parent=%q stage=%s %s", c.ID, c.ParentID, c.Stage, c.Activity.render(base)))
	}
	for _, p := range s.Processes {
		out = append(out, fmt.Sprintf("proc %d/%s %s", p.PID, p.Component, p.Activity.render(base)))
	}
	return out
}

func TestWorkflowState(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	base := clk.Now()
	started := base.Add(-time.Second)
	s1 := md("s1", "", "R", "enumeration")
	s1.StartedAt = started
	record(t, tr, clk, s1, 1, "agent", false)                                      // @1 task
	record(t, tr, clk, s1, 10, "procmond", false)                                  // @2
	record(t, tr, clk, s1, 11, "procmond", true)                                   // @3 final: enumeration complete
	record(t, tr, clk, md("s2", "s1", "R", "integrity"), 1, "agent", false)        // @4 child in a new stage
	record(t, tr, clk, md("s2", "s1", "R", "integrity"), 10, "procmond", false)    // @5
	record(t, tr, clk, md("s3", "s2", "R", "network_analysis"), 1, "agent", false) // @6 completes integrity
	record(t, tr, clk, md("s3", "s2", "R", "network_analysis"), 20, "netmond", false)
	record(t, tr, clk, md("o", "", "OTHER", "x"), 1, "agent", false)

	st, ok := tr.Workflow("R")
	if !ok {
		t.Fatal("Workflow(R) not found")
	}
	payload := 0
	for _, e := range tr.ByRoot("R") {
		payload += len(e.Payload)
	}
	want := []string{
		fmt.Sprintf("workflow R @1..@7 7/1 payload=%d untracked=0", payload),
		"stage enumeration @1..@3 3/1 completed=true@3",
		"stage integrity @4..@5 2/0 completed=true@6",
		"stage network_analysis @6..@7 2/0 completed=false-",
		`corr s1 parent="" stage=enumeration @1..@3 3/1`,
		`corr s2 parent="s1" stage=integrity @4..@5 2/0`,
		`corr s3 parent="s2" stage=network_analysis @6..@7 2/0`,
		"proc 1/agent @1..@6 3/0",
		"proc 10/procmond @2..@5 2/0",
		"proc 11/procmond @3..@3 1/1",
		"proc 20/netmond @7..@7 1/0",
	}
	if got := renderState(base, st); !slices.Equal(got, want) {
		t.Errorf("Workflow(R) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !st.StartedAt.Equal(started) {
		t.Errorf("StartedAt = %v; want %v", st.StartedAt, started)
	}

	// The state is a copy.
	st.Stages[0].Name = "changed"
	if again, _ := tr.Workflow("R"); again.Stages[0].Name != "enumeration" {
		t.Errorf("changing a returned state changed the tracker's")
	}

	sums := tr.Workflows()
	var got []string
	for _, s := range sums {
		got = append(got, fmt.Sprintf("%s current=%s stages=%d/%d corrs=%d procs=%d %s",
			s.RootID, s.CurrentStage, s.CompletedStages, s.Stages, s.Correlations, s.Processes, s.Activity.render(base)))
	}
	wantSums := []string{
		"R current=network_analysis stages=2/3 corrs=3 procs=4 @1..@7 7/1",
		"OTHER current=x stages=0/1 corrs=1 procs=1 @8..@8 1/0",
	}
	if !slices.Equal(got, wantSums) {
		t.Errorf("Workflows() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantSums, "\n"))
	}
}

func TestStageCompletion(t *testing.T) {
	tests := []struct {
		name   string
		events []Metadata
		finals []bool
		want   map[string]bool
	}{
		{"parallel stages stay open", []Metadata{md("a", "", "R", "A"), md("b", "", "R", "B"), md("a", "", "R", "A")},
			[]bool{false, false, false}, map[string]bool{"A": false, "B": false}},
		{"child in the same stage does not complete", []Metadata{md("a", "", "R", "A"), md("a2", "a", "R", "A")},
			[]bool{false, false}, map[string]bool{"A": false}},
		{"child in a new stage completes the parent's", []Metadata{md("a", "", "R", "A"), md("b", "a", "R", "B")},
			[]bool{false, false}, map[string]bool{"A": true, "B": false}},
		{"final completes its stage", []Metadata{md("a", "", "R", "A"), md("b", "", "R", "B")},
			[]bool{false, true}, map[string]bool{"A": false, "B": true}},
		{"unstaged child completes nothing", []Metadata{md("a", "", "R", "A"), md("b", "a", "R", "")},
			[]bool{false, false}, map[string]bool{"A": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clk := newTestTracker(t, Config{})
			for i, m := range tt.events {
				record(t, tr, clk, m, 1, "agent", tt.finals[i])
			}
			st, _ := tr.Workflow("R")
			got := map[string]bool{}
			for _, s := range st.Stages {
				got[s.Name] = s.Completed
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("completed stages = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestWorkflowExpiry(t *testing.T) {
	tr, clk := newTestTracker(t, Config{IdleTimeout: time.Minute})
	base := clk.Now()
	record(t, tr, clk, md("a", "", "A", "s"), 1, "agent", false) // @1ms
	clk.tick(30 * time.Second)
	record(t, tr, clk, md("b", "", "B", "s"), 1, "agent", false) // @30.002s

	roots := func() []string {
		var out []string
		for _, s := range tr.Workflows() {
			out = append(out, s.RootID)
		}
		return out
	}
	clk.tick(time.Minute - 30*time.Second - time.Millisecond - 1) // A idle 1ns short of a minute
	if got := roots(); !slices.Equal(got, []string{"A", "B"}) {
		t.Fatalf("just before A's timeout: Workflows = %v; want [A B]", got)
	}
	clk.tick(1) // A idle exactly IdleTimeout
	if got := roots(); !slices.Equal(got, []string{"B"}) {
		t.Fatalf("at A's timeout: Workflows = %v; want [B]", got)
	}
	if _, ok := tr.Workflow("A"); ok {
		t.Errorf("Workflow(A) found after expiry")
	}
	// The history keeps the expired workflow's events.
	if got := len(tr.ByRoot("A")); got != 1 {
		t.Errorf("ByRoot(A) after expiry = %d events; want 1", got)
	}
	if n := tr.Expire(base.Add(time.Hour)); n != 1 {
		t.Errorf("Expire(+1h) = %d; want 1 (B)", n)
	}
	// A late event starts the workflow afresh, and Record expires lazily:
	// C's event is an hour later than D's, so D is gone at C's record.
	clk.tick(time.Hour)
	record(t, tr, clk, md("d", "", "D", "s"), 1, "agent", false)
	if err := tr.Record(Event{ReceivedAt: clk.Now().Add(2 * time.Hour), Metadata: md("a", "", "A", "s")}); err != nil {
		t.Fatal(err)
	}
	st, ok := tr.Workflow("A")
	if !ok || st.Events != 1 {
		t.Errorf("Workflow(A) after a late event = %v, %d events; want found with 1 event", ok, st.Events)
	}
	s := tr.Stats()
	if s.Workflows != 1 || s.WorkflowsExpired != 3 {
		t.Errorf("Stats = %+v; want 1 workflow (A), 3 expired (A, B, D)", s)
	}
}

func TestMaxWorkflows(t *testing.T) {
	tr, clk := newTestTracker(t, Config{MaxWorkflows: 2})
	record(t, tr, clk, md("a", "", "A", ""), 1, "agent", false)
	record(t, tr, clk, md("b", "", "B", ""), 1, "agent", false)
	record(t, tr, clk, md("a", "", "A", ""), 1, "agent", false) // A now more recent than B
	record(t, tr, clk, md("c", "", "C", ""), 1, "agent", false) // drops B
	var got []string
	for _, s := range tr.Workflows() {
		got = append(got, s.RootID)
	}
	if !slices.Equal(got, []string{"A", "C"}) {
		t.Errorf("Workflows = %v; want [A C]", got)
	}
	if s := tr.Stats(); s.WorkflowsEvicted != 1 {
		t.Errorf("WorkflowsEvicted = %d; want 1", s.WorkflowsEvicted)
	}
}

func TestWorkflowLimits(t *testing.T) {
	tests := []struct {
		name  string
		event func(i int) (Metadata, int)
		n     int
		count func(WorkflowState) int
		limit int
	}{
		{"correlations", func(i int) (Metadata, int) { return md(fmt.Sprint("c", i), "", "R", "s"), 1 },
			MaxWorkflowCorrelations, func(s WorkflowState) int { return len(s.Correlations) }, MaxWorkflowCorrelations},
		{"stages", func(i int) (Metadata, int) { return md("c", "", "R", fmt.Sprint("s", i)), 1 },
			MaxWorkflowStages, func(s WorkflowState) int { return len(s.Stages) }, MaxWorkflowStages},
		{"processes", func(i int) (Metadata, int) { return md("c", "", "R", "s"), i },
			MaxWorkflowProcesses, func(s WorkflowState) int { return len(s.Processes) }, MaxWorkflowProcesses},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clk := newTestTracker(t, Config{})
			for i := range tt.n + 5 {
				m, pid := tt.event(i)
				record(t, tr, clk, m, pid, "p", false)
			}
			st, _ := tr.Workflow("R")
			if got := tt.count(st); got != tt.limit {
				t.Errorf("%s tracked = %d; want the limit %d", tt.name, got, tt.limit)
			}
			if st.Untracked != 5 || st.Events != tt.n+5 {
				t.Errorf("Untracked = %d, Events = %d; want 5, %d", st.Untracked, st.Events, tt.n+5)
			}
		})
	}
}
