package correlation

import (
	"cmp"
	"container/list"
	"math"
	"slices"
	"time"
)

// Per-workflow bounds, so that one busy or hostile workflow cannot grow the
// tracker without limit. What goes past them is counted in
// WorkflowState.Untracked; the events themselves are still recorded.
const (
	MaxWorkflowStages       = 64
	MaxWorkflowCorrelations = 256
	MaxWorkflowProcesses    = 256
)

// Activity counts the events of one workflow, stage, correlation or
// process.
type Activity struct {
	FirstSeen time.Time // receive time of the first event
	LastSeen  time.Time // receive time of the latest event
	Events    int
	Finals    int // events with Final set
}

// StageState is one stage of a workflow.
//
// A stage is Completed when one of its events is marked Final, or when a
// correlation in another stage whose parent belongs to this stage starts:
// the workflow has moved on from it. A later stage that is not linked by
// parent does not complete it, since stages may run in parallel.
// CompletedAt is when it first became complete; later events still count.
type StageState struct {
	Name string
	Activity
	Completed   bool
	CompletedAt time.Time
}

// CorrelationState is one correlation of a workflow, with its parent link.
type CorrelationState struct {
	ID       string
	ParentID string
	Stage    string // stage of its first event
	Activity
}

// ProcessState is one participating process, as the broker verified it.
type ProcessState struct {
	PID       int
	Component string
	Activity
}

// WorkflowState is a copy of everything tracked for one root id. Stages,
// correlations and processes are in the order they were first seen.
type WorkflowState struct {
	RootID string
	Activity
	StartedAt    time.Time // Metadata.StartedAt of the first event
	PayloadBytes int64
	// Untracked counts events whose stage, correlation or process was past
	// the MaxWorkflow* limits and so is missing from the lists.
	Untracked    int
	Stages       []StageState
	Correlations []CorrelationState
	Processes    []ProcessState
}

// WorkflowSummary is a short view of an active workflow.
type WorkflowSummary struct {
	RootID string
	Activity
	CurrentStage    string // the stage seen first most recently
	Stages          int
	CompletedStages int
	Correlations    int
	Processes       int
}

// activity is Activity in Unix nanoseconds, as kept internally.
type activity struct {
	first, last    int64
	events, finals int
}

func (a *activity) touch(recv int64, final bool) {
	if a.events == 0 {
		a.first = recv
	}
	a.last = recv
	a.events++
	if final {
		a.finals++
	}
}

func (a *activity) export() Activity {
	return Activity{FirstSeen: fromNanos(a.first), LastSeen: fromNanos(a.last), Events: a.events, Finals: a.finals}
}

type workflow struct {
	root string
	activity
	started   int64
	bytes     int64
	untracked int
	stages    []*stageState // few: a slice beats a map
	corrs     map[string]*corrState
	corrList  []*corrState
	procs     map[publisher]*procState
	procList  []*procState
	elem      *list.Element // in Tracker.activity
}

type stageState struct {
	name string
	activity
	completed int64 // 0 until complete
}

type corrState struct {
	id, parent, stage string
	activity
}

type procState struct {
	pub publisher
	activity
}

// flowLocked returns the workflow of m's root, starting one (and dropping
// the least recently active past MaxWorkflows) if needed, and marks it
// active.
func (t *Tracker) flowLocked(m *meta) *workflow {
	w := t.flows[m.root.key]
	if w == nil {
		if len(t.flows) >= t.cfg.MaxWorkflows {
			t.dropFlowLocked(t.activity.Front().Value.(*workflow))
			t.counts.WorkflowsEvicted++
		}
		w = &workflow{
			root:    m.root.key,
			started: m.started,
			corrs:   make(map[string]*corrState),
			procs:   make(map[publisher]*procState),
		}
		t.flows[w.root] = w
		w.elem = t.activity.PushBack(w)
		t.idleFrom = math.MinInt64 // until trackLocked sets w.last
		return w
	}
	t.activity.MoveToBack(w.elem)
	return w
}

// dropFlowLocked stops tracking w; a nil elem tells Recorders holding it.
func (t *Tracker) dropFlowLocked(w *workflow) {
	delete(t.flows, w.root)
	t.activity.Remove(w.elem)
	w.elem = nil
}

// expireLocked drops workflows idle for IdleTimeout or more at now. The
// activity list is in order of last event, so it stops at the first
// workflow still active.
//
// Record calls it for every event, so t.idleFrom, a lower bound of every
// workflow's last activity, spares it the list while nothing can expire.
// Activity only moves forward, so the bound holds until a workflow starts
// (flowLocked lowers it).
func (t *Tracker) expireLocked(now int64) int {
	if now-int64(t.cfg.IdleTimeout) < t.idleFrom {
		return 0
	}
	return t.expireScanLocked(now)
}

func (t *Tracker) expireScanLocked(now int64) int {
	cut := now - int64(t.cfg.IdleTimeout)
	n := 0
	t.idleFrom = math.MaxInt64
	for el := t.activity.Front(); el != nil; el = t.activity.Front() {
		w := el.Value.(*workflow)
		if w.last > cut {
			t.idleFrom = w.last
			break
		}
		t.dropFlowLocked(w)
		t.counts.WorkflowsExpired++
		n++
	}
	return n
}

// Expire drops every workflow idle for IdleTimeout or more at now and
// returns how many it dropped. Record and the workflow queries also expire
// lazily, so calling it is optional.
func (t *Tracker) Expire(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expireLocked(now.UnixNano())
}

// tracked is what an event resolved to in its workflow; nil where the
// workflow was past a limit.
type tracked struct {
	stage *stageState // nil too when the event has no stage
	corr  *corrState
	proc  *procState
}

// trackLocked adds e to its workflow. r holds the workflow and entries
// that its previous event of the same meta resolved to, if any (see
// Recorder.Record); they are reused while the workflow is tracked, but an
// entry past a limit is looked up again each time.
func (t *Tracker) trackLocked(e *entry, r *Recorder) {
	m := e.meta
	w := r.flow
	if w != nil && w.elem != nil {
		t.activity.MoveToBack(w.elem)
	} else {
		w = t.flowLocked(m)
		r.flow, r.states = w, tracked{}
	}
	w.touch(e.recv, e.final)
	w.bytes += int64(len(e.payload))
	s := &r.states
	complete := true
	if m.stage != nil {
		if s.stage == nil {
			s.stage = w.stage(m.stage.key)
		}
		if s.stage != nil {
			s.stage.touch(e.recv, e.final)
			if e.final {
				s.stage.complete(e.recv)
			}
		} else {
			complete = false
		}
	}
	if s.corr == nil {
		s.corr = w.correlation(m, e.recv)
	}
	if s.corr != nil {
		s.corr.touch(e.recv, e.final)
	} else {
		complete = false
	}
	if s.proc == nil {
		s.proc = w.process(e.publisher())
	}
	if s.proc != nil {
		s.proc.touch(e.recv, e.final)
	} else {
		complete = false
	}
	if !complete {
		w.untracked++
	}
}

func (s *stageState) complete(at int64) {
	if s.completed == 0 {
		s.completed = at
	}
}

// stage finds or adds a stage; nil past MaxWorkflowStages.
func (w *workflow) stage(name string) *stageState {
	for _, s := range w.stages {
		if s.name == name {
			return s
		}
	}
	if len(w.stages) >= MaxWorkflowStages {
		return nil
	}
	s := &stageState{name: name}
	w.stages = append(w.stages, s)
	return s
}

func (w *workflow) findStage(name string) *stageState {
	for _, s := range w.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// correlation finds or adds m's correlation, for an event received at
// recv; nil past the limit. A new correlation whose parent is in another
// stage completes that stage.
func (w *workflow) correlation(m *meta, recv int64) *corrState {
	if c := w.corrs[m.corr.key]; c != nil {
		return c
	}
	if len(w.corrList) >= MaxWorkflowCorrelations {
		return nil
	}
	c := &corrState{id: m.corr.key, parent: m.parent, stage: m.stageName()}
	w.corrs[c.id] = c
	w.corrList = append(w.corrList, c)
	if p := w.corrs[c.parent]; p != nil && p.stage != "" && p.stage != c.stage {
		if s := w.findStage(p.stage); s != nil {
			s.complete(recv)
		}
	}
	return c
}

// process finds or adds a participating process; nil past the limit.
func (w *workflow) process(pub publisher) *procState {
	if len(w.procList) <= smallSet {
		// A few processes: comparing beats hashing a pid and a string.
		for _, p := range w.procList {
			if p.pub == pub {
				return p
			}
		}
	} else if p := w.procs[pub]; p != nil {
		return p
	}
	if len(w.procList) >= MaxWorkflowProcesses {
		return nil
	}
	p := &procState{pub: pub}
	w.procs[pub] = p
	w.procList = append(w.procList, p)
	return p
}

func (w *workflow) state() WorkflowState {
	s := WorkflowState{
		RootID:       w.root,
		Activity:     w.export(),
		StartedAt:    fromNanos(w.started),
		PayloadBytes: w.bytes,
		Untracked:    w.untracked,
		Stages:       make([]StageState, len(w.stages)),
		Correlations: make([]CorrelationState, len(w.corrList)),
		Processes:    make([]ProcessState, len(w.procList)),
	}
	for i, st := range w.stages {
		s.Stages[i] = StageState{Name: st.name, Activity: st.export(),
			Completed: st.completed != 0, CompletedAt: fromNanos(st.completed)}
	}
	for i, c := range w.corrList {
		s.Correlations[i] = CorrelationState{ID: c.id, ParentID: c.parent, Stage: c.stage, Activity: c.export()}
	}
	for i, p := range w.procList {
		s.Processes[i] = ProcessState{PID: p.pub.pid, Component: p.pub.component, Activity: p.export()}
	}
	return s
}

func (w *workflow) summary() WorkflowSummary {
	s := WorkflowSummary{RootID: w.root, Activity: w.export(), Stages: len(w.stages),
		Correlations: len(w.corrList), Processes: len(w.procList)}
	var latest int64
	for _, st := range w.stages {
		if st.completed != 0 {
			s.CompletedStages++
		}
		if st.first >= latest {
			latest, s.CurrentStage = st.first, st.name
		}
	}
	return s
}

// Workflow returns a copy of the state of the workflow rooted at root, if
// it is tracked (seen, not expired, not dropped).
func (t *Tracker) Workflow(root string) (WorkflowState, bool) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(now.UnixNano())
	w := t.flows[root]
	if w == nil {
		return WorkflowState{}, false
	}
	return w.state(), true
}

// Workflows summarizes every active workflow, oldest first.
func (t *Tracker) Workflows() []WorkflowSummary {
	now := t.cfg.Now()
	t.mu.Lock()
	t.expireLocked(now.UnixNano())
	out := make([]WorkflowSummary, 0, len(t.flows))
	for _, w := range t.flows {
		out = append(out, w.summary())
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b WorkflowSummary) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.RootID, b.RootID))
	})
	return out
}

// parentLinks returns a copy of the workflow's correlation → parent links.
func (w *workflow) parentLinks() map[string]string {
	links := make(map[string]string, len(w.corrList))
	for _, c := range w.corrList {
		if c.parent != "" {
			links[c.id] = c.parent
		}
	}
	return links
}
