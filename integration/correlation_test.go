//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
)

// The correlation tests (docs/CORRELATION.md; the seed's three workflow scenarios)
// run the broker, the agent, the collectors and the analyst as separate
// OS processes, under a policy that admits them as components, so every
// pid and component below is what the broker's kernel reported.

// corrTimeout bounds each wait for one helper's step.
const corrTimeout = 20 * time.Second

// corrPolicy admits procmond, netmond, analyst and the agent (with its
// token) from the test's uid ({{self}}); {{token}} is the agent token
// file. Topics keep docs/SECURITY.md §3's levels: events.process.anomaly is
// public, everything else restricted.
const corrPolicy = `# eventbus correlation test policy
default_access: restricted
topics:
  - pattern: events.+.anomaly
    access: public
components:
  procmond:
    uids: [{{self}}]
    publish: [events.process.#]
    subscribe: [control.collector.task.process.#]
  netmond:
    uids: [{{self}}]
    publish: [events.network.#]
    subscribe: [control.collector.task.network.#]
  analyst:
    uids: [{{self}}]
    subscribe: [events.#, control.collector.task.#]
  agent:
    uids: [{{self}}]
agent:
  token_file: {{token}}
`

// corrFixture is a broker running corrPolicy.
type corrFixture struct {
	socket    string
	tokenFile string
	broker    *proc
}

func newCorrFixture(t *testing.T, brokerArgs ...string) *corrFixture {
	t.Helper()
	dir := testutil.SocketDir(t)
	f := &corrFixture{socket: filepath.Join(dir, "s"), tokenFile: filepath.Join(dir, "agent", "token")}
	policy := strings.NewReplacer("{{self}}", fmt.Sprint(os.Geteuid()), "{{token}}", f.tokenFile).Replace(corrPolicy)
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	f.broker = start(t, "broker", "broker", nil, append([]string{"-socket", f.socket, "-policy", policyFile}, brokerArgs...)...)
	f.broker.waitLine(t, corrTimeout, "ready")
	return f
}

// collector starts a collector process and waits until it has subscribed.
func (f *corrFixture) collector(t *testing.T, name, component string, args ...string) *proc {
	t.Helper()
	p := start(t, name, "collector", nil, append([]string{"-socket", f.socket, "-name", name, "-component", component}, args...)...)
	p.waitLine(t, corrTimeout, "subscribed")
	return p
}

// agent starts the agent as a socket client that holds the agent token.
func (f *corrFixture) agent(t *testing.T, args ...string) *proc {
	t.Helper()
	return start(t, "agent", "agent", nil, append([]string{"-socket", f.socket, "-component", "agent", "-token-file", f.tokenFile}, args...)...)
}

// query runs the query role as component ("" for an anonymous peer) and
// waits for it to finish.
func (f *corrFixture) query(t *testing.T, name, component string, args ...string) *proc {
	t.Helper()
	args = append([]string{"-socket", f.socket}, args...)
	if component != "" {
		args = append(args, "-component", component)
	}
	p := start(t, name, "query", nil, args...)
	p.waitLine(t, corrTimeout, "done")
	p.waitExit(t, corrTimeout)
	return p
}

// decodeLines decodes the JSON after prefix on each line of p that starts
// with prefix+" ", into a T each.
func decodeLines[T any](t *testing.T, p *proc, prefix string) []T {
	t.Helper()
	var out []T
	for _, l := range p.snapshot().linesWith(prefix + " ") {
		var v T
		if err := json.Unmarshal([]byte(strings.TrimPrefix(l, prefix+" ")), &v); err != nil {
			t.Fatalf("%s printed %q: %v", p.name, l, err)
		}
		out = append(out, v)
	}
	return out
}

// fields returns the fields of the one line of p starting with prefix+" ".
func fields(t *testing.T, p *proc, prefix string) []string {
	t.Helper()
	return strings.Fields(line(t, p, prefix+" "))
}

// answerer is a collector expected among a wait's results.
type answerer struct {
	name      string // its source process name
	pid       int
	component string
	topic     string // of its results
	results   int    // how many it sends per task, the last final
}

// checkWaitResults checks the events a wait for task id returned: the
// agent's task (from agentPID, not final) and exactly each answerer's
// results, in its publish order, the last and only the last final, all
// carrying the task's correlation, in receive order.
func checkWaitResults(t *testing.T, who string, evs []corrEvent, id string, agentPID int, answerers []answerer) {
	t.Helper()
	byPID := make(map[int][]corrEvent)
	for i, e := range evs {
		if !e.HasMeta || e.Meta.CorrelationID != id || e.Meta.RootID != id || e.Meta.Stage != "enumeration" {
			t.Errorf("%s: event %d (%s %q) has correlation %+v; want id and root %s, stage enumeration", who, i, e.Topic, e.Payload, e.Meta, id)
		}
		if i > 0 && e.ReceivedAt.Before(evs[i-1].ReceivedAt) {
			t.Errorf("%s: event %d received at %v, before event %d (%v): not in receive order", who, i, e.ReceivedAt, i-1, evs[i-1].ReceivedAt)
		}
		byPID[e.PID] = append(byPID[e.PID], e)
	}
	task := byPID[agentPID]
	if len(task) != 1 || task[0].Topic != taskProcess || task[0].Final || task[0].Component != "agent" || task[0].Meta.SourceProcess != agentSource {
		t.Errorf("%s: events from the agent (pid %d): %+v; want its one task on %s, component agent, source %s, not final",
			who, agentPID, task, taskProcess, agentSource)
	}
	delete(byPID, agentPID)
	for _, a := range answerers {
		got := byPID[a.pid]
		delete(byPID, a.pid)
		if len(got) != a.results {
			t.Errorf("%s: %d results from %s (pid %d); want %d: %+v", who, len(got), a.name, a.pid, a.results, got)
			continue
		}
		for i, e := range got {
			want := fmt.Sprintf("%s result %d/%d for ", a.name, i+1, a.results)
			last := i == a.results-1
			if !strings.HasPrefix(e.Payload, want) || e.Topic != a.topic || e.Component != a.component ||
				e.Meta.SourceProcess != a.name || e.Final != last {
				t.Errorf("%s: result %d from %s (pid %d) = %s %q component %q source %q final %t; want %s %q... component %q source %q final %t",
					who, i, a.name, a.pid, e.Topic, e.Payload, e.Component, e.Meta.SourceProcess, e.Final,
					a.topic, want, a.component, a.name, last)
			}
		}
	}
	for pid, extra := range byPID {
		t.Errorf("%s: %d events from pid %d, neither the agent nor a collector: %+v", who, len(extra), pid, extra)
	}
}

// TestCorrelationSingleStage is the seed's scenario 1: the agent publishes
// a correlated task on control.collector.task.process, two procmond
// processes answer with the same correlation id, each marking its last
// result final, and the agent's wait for two final publishers returns both
// collectors' results. The agent is first a separate process waiting
// over the socket (Client.Wait), then the broker's in-process client
// waiting on the broker's tracker (Tracker.Wait).
func TestCorrelationSingleStage(t *testing.T) {
	f := newCorrFixture(t, "-agent-wait", "2")
	answerers := []answerer{
		{name: "procmond-1", component: "procmond", topic: "events.process.batch", results: 2},
		{name: "procmond-2", component: "procmond", topic: "events.process.batch", results: 1},
	}
	var collectors []*proc
	for i := range answerers {
		a := &answerers[i]
		p := f.collector(t, a.name, a.component, "-task", taskProcess, "-result-topic", a.topic, "-results", fmt.Sprint(a.results))
		a.pid = p.pid()
		collectors = append(collectors, p)
	}

	t.Run("SocketAgent", func(t *testing.T) {
		agent := f.agent(t, "-mode", "single", "-finals", "2")
		agent.waitLine(t, corrTimeout, "unmet ")
		agent.waitExit(t, corrTimeout)
		id := fields(t, agent, "task")[0]
		waited := fields(t, agent, "waited")
		if len(waited) != 2 || waited[1] != "ok" {
			t.Fatalf("agent: wait for 2 final publishers ended %q; want \"<count> ok\"", waited)
		}
		evs := decodeLines[corrEvent](t, agent, "result")
		if waited[0] != fmt.Sprint(len(evs)) || len(evs) != 4 {
			t.Errorf("agent: wait returned %s events, printed %d; want 4 (the task and 3 results)", waited[0], len(evs))
		}
		checkWaitResults(t, "agent's Client.Wait", evs, id, agent.pid(), answerers)
		// A wait that cannot be met ends at its deadline with the results
		// so far and ErrWaitUnmet.
		unmet := fields(t, agent, "unmet")
		if len(unmet) < 2 || unmet[0] != "4" || unmet[1] != "true" {
			t.Errorf("agent: wait for 3 final publishers ended %q; want 4 events and an error matching ErrWaitUnmet", unmet)
		}
		checkAnsweredOnce(t, collectors, id)
	})

	t.Run("InProcessAgent", func(t *testing.T) {
		f.broker.Signal(t, syscall.SIGUSR2)
		f.broker.waitLine(t, corrTimeout, "agent-waited ")
		id := fields(t, f.broker, "agent-task")[0]
		waited := fields(t, f.broker, "agent-waited")
		if len(waited) != 3 || waited[0] != id || waited[2] != "ok" {
			t.Fatalf("broker: in-process agent's wait ended %q; want \"%s <count> ok\"", waited, id)
		}
		evs := decodeLines[corrEvent](t, f.broker, "agent-result")
		if len(evs) != 4 {
			t.Errorf("broker: Tracker.Wait returned %d events; want 4 (the task and 3 results)", len(evs))
		}
		checkWaitResults(t, "in-process agent's Tracker.Wait", evs, id, f.broker.pid(), answerers)
		checkAnsweredOnce(t, collectors, id)
	})
}

// checkAnsweredOnce checks that each collector answered task id once. A
// collector prints its line after its answers reached the broker, which
// may be after the wait for them ended: wait for it.
func checkAnsweredOnce(t *testing.T, collectors []*proc, id string) {
	t.Helper()
	for _, c := range collectors {
		c.waitLine(t, corrTimeout, "answered "+id+" ")
		if got := c.snapshot().linesWith("answered " + id + " "); len(got) != 1 {
			t.Errorf("%s: answered task %s %d times; want once", c.name, id, len(got))
		}
	}
}

// TestCorrelationMultiStage is the seed's scenario 2: the agent (a
// socket client) runs enumeration → integrity → network_analysis, each
// stage's correlation a child of the previous one's, in one workflow.
// Each stage is answered by a different collector process: two procmond
// processes whose subscriptions filter on their stage (so the broker
// hands each only its own task) and netmond. Another process, an
// analyst, then reads the workflow's timeline, state and summary.
func TestCorrelationMultiStage(t *testing.T) {
	f := newCorrFixture(t)
	answerers := map[string]*answerer{
		"enumeration":      {name: "procmond-enum", component: "procmond", topic: "events.process.batch", results: 1},
		"integrity":        {name: "procmond-integrity", component: "procmond", topic: "events.process.integrity", results: 1},
		"network_analysis": {name: "netmond", component: "netmond", topic: "events.network.connections", results: 2},
	}
	collectors := make(map[string]*proc)
	for _, st := range workflowStages {
		a := answerers[st.name]
		p := f.collector(t, a.name, a.component, "-task", st.topic+".#", "-stages", st.name,
			"-result-topic", a.topic, "-results", fmt.Sprint(a.results))
		a.pid = p.pid()
		collectors[st.name] = p
	}
	agent := f.agent(t, "-mode", "workflow")
	agent.waitLine(t, corrTimeout, "done")
	agent.waitExit(t, corrTimeout)
	root := fields(t, agent, "root")[0]
	ids := make(map[string]string) // stage → correlation id
	for _, l := range agent.snapshot().linesWith("stage ") {
		fl := strings.Fields(l)
		ids[fl[1]] = fl[2]
	}
	if ids["enumeration"] != root || len(ids) != 3 {
		t.Fatalf("agent printed stages %v and root %s; want 3 stages, the first's correlation the root", ids, root)
	}
	// Each collector was handed only its own stage's task.
	for _, st := range workflowStages {
		p := collectors[st.name]
		want := fmt.Sprintf("answered %s %s %d", ids[st.name], st.name, answerers[st.name].results)
		p.waitLine(t, corrTimeout, want)
		if got := p.snapshot().linesWith("answered "); len(got) != 1 || got[0] != want {
			t.Errorf("%s: answered %q; want exactly %q", p.name, got, want)
		}
	}

	analyst := f.query(t, "analyst", "analyst", "-timeline", root, "-workflow", root, "-workflows")
	timeline := decodeLines[correlation.TimelineEntry](t, analyst, "timeline")
	finalAt := checkTimeline(t, timeline, root, ids, agent.pid(), answerers)
	ws := decodeLines[correlation.WorkflowState](t, analyst, "workflow")
	if len(ws) != 1 {
		t.Fatalf("analyst: Workflow(%s) printed %d states (lines %q); want 1", root, len(ws), analyst.snapshot().lines)
	}
	checkWorkflow(t, ws[0], root, ids, finalAt, agent.pid(), answerers)
	sums := decodeLines[correlation.WorkflowSummary](t, analyst, "workflows")
	i := slices.IndexFunc(sums, func(s correlation.WorkflowSummary) bool { return s.RootID == root })
	switch {
	case i < 0:
		t.Errorf("analyst: Workflows() = %+v; want the workflow %s listed", sums, root)
	case sums[i].Stages != 3 || sums[i].CompletedStages != 3 || sums[i].Correlations != 3 || sums[i].Processes != 4 ||
		sums[i].CurrentStage != "network_analysis" || sums[i].Events != 7 || sums[i].Finals != 3:
		t.Errorf("analyst: Workflows() lists %+v; want 3 stages all completed, 3 correlations, 4 processes, current stage network_analysis, 7 events, 3 final", sums[i])
	}

	// An anonymous process may read no restricted topic: the timeline
	// shows it nothing and the workflow state is refused.
	anon := f.query(t, "anonymous", "", "-timeline", root, "-workflow", root)
	if got := anon.snapshot().linesWith("timeline"); len(got) != 0 {
		t.Errorf("anonymous: Timeline(%s) printed %q; want nothing (every topic of the workflow is restricted)", root, got)
	}
	if got := anon.snapshot().linesWith("workflow"); len(got) != 1 || !strings.HasPrefix(got[0], "workflow-err forbidden=true ") {
		t.Errorf("anonymous: Workflow(%s) printed %q; want one refusal matching ErrForbidden", root, got)
	}
}

// checkTimeline checks the workflow's timeline, which holds tasks and
// answers in receive order: per stage the agent's task, then the stage's
// collector's results, with their depth in the parent chain (0, 1, 2).
// It returns when each stage's final answer was received.
func checkTimeline(t *testing.T, got []correlation.TimelineEntry, root string, ids map[string]string, agentPID int, answerers map[string]*answerer) map[string]time.Time {
	t.Helper()
	type row struct {
		Stage, Topic, Component, Source, CorrelationID, ParentID string
		PID, Depth                                               int
		Final                                                    bool
	}
	var want []row
	parent := ""
	for depth, st := range workflowStages {
		id, a := ids[st.name], answerers[st.name]
		want = append(want, row{st.name, st.topic, "agent", agentSource, id, parent, agentPID, depth, false})
		for i := range a.results {
			want = append(want, row{st.name, a.topic, a.component, a.name, id, parent, a.pid, depth, i == a.results-1})
		}
		parent = id
	}
	finalAt := make(map[string]time.Time)
	var rows []row
	for i, e := range got {
		rows = append(rows, row{e.Stage, e.Topic, e.PublisherComponent, e.SourceProcess, e.CorrelationID, e.ParentID, e.PublisherPID, e.Depth, e.Final})
		if i > 0 && e.ReceivedAt.Before(got[i-1].ReceivedAt) {
			t.Errorf("timeline entry %d received at %v, before entry %d (%v)", i, e.ReceivedAt, i-1, got[i-1].ReceivedAt)
		}
		if e.Final {
			finalAt[e.Stage] = e.ReceivedAt
		}
	}
	if !slices.Equal(rows, want) {
		t.Errorf("Timeline(%s) from another process:\n%s\nwant:\n%s", root, fmtRows(rows), fmtRows(want))
	}
	return finalAt
}

func fmtRows[T any](rows []T) string {
	var b strings.Builder
	for i, r := range rows {
		fmt.Fprintf(&b, "  %d: %+v\n", i, r)
	}
	return b.String()
}

// checkWorkflow checks the workflow state: three stages in order, each
// completed when its final answer arrived; three correlations linked by
// parent; four participating processes (the agent and the three
// collectors) with their event counts.
func checkWorkflow(t *testing.T, w correlation.WorkflowState, root string, ids map[string]string, finalAt map[string]time.Time, agentPID int, answerers map[string]*answerer) {
	t.Helper()
	if w.RootID != root || w.Events != 7 || w.Finals != 3 || w.Untracked != 0 {
		t.Errorf("Workflow(%s) = root %s, %d events, %d final, %d untracked; want root %s, 7 events, 3 final, 0 untracked",
			root, w.RootID, w.Events, w.Finals, w.Untracked, root)
	}
	if len(w.Stages) != len(workflowStages) {
		t.Fatalf("Workflow(%s) has stages %+v; want %d", root, w.Stages, len(workflowStages))
	}
	parent := ""
	wantProcs := []struct {
		pid       int
		component string
		events    int
	}{{agentPID, "agent", 3}}
	for i, st := range workflowStages {
		s, a := w.Stages[i], answerers[st.name]
		if s.Name != st.name || !s.Completed || s.Events != 1+a.results || s.Finals != 1 {
			t.Errorf("Workflow stage %d = %s completed %t, %d events, %d final; want %s completed, %d events, 1 final",
				i, s.Name, s.Completed, s.Events, s.Finals, st.name, 1+a.results)
		}
		if at := finalAt[st.name]; !s.CompletedAt.Equal(at) {
			t.Errorf("Workflow stage %s completed at %v; want %v, when its final answer arrived", st.name, s.CompletedAt, at)
		}
		if i < len(w.Correlations) {
			c := w.Correlations[i]
			if c.ID != ids[st.name] || c.ParentID != parent || c.Stage != st.name || c.Events != 1+a.results {
				t.Errorf("Workflow correlation %d = %+v; want id %s, parent %q, stage %s, %d events", i, c, ids[st.name], parent, st.name, 1+a.results)
			}
		}
		parent = ids[st.name]
		wantProcs = append(wantProcs, struct {
			pid       int
			component string
			events    int
		}{a.pid, a.component, a.results})
	}
	if len(w.Correlations) != 3 {
		t.Errorf("Workflow(%s) has %d correlations; want 3", root, len(w.Correlations))
	}
	if len(w.Processes) != len(wantProcs) {
		t.Fatalf("Workflow(%s) processes = %+v; want %d: the agent and the three collectors", root, w.Processes, len(wantProcs))
	}
	for i, p := range w.Processes {
		if want := wantProcs[i]; p.PID != want.pid || p.Component != want.component || p.Events != want.events {
			t.Errorf("Workflow process %d = pid %d %q with %d events; want pid %d %q with %d", i, p.PID, p.Component, p.Events, want.pid, want.component, want.events)
		}
	}
}

// emitter is a process of the forensic scenario.
type emitter struct {
	name, component, topic string
	public                 bool // its topic is public
	p                      *proc
}

// TestCorrelationForensicTags is the seed's scenario 3: three collector
// processes publish events tagged with investigation INC-12345 amid
// noise (another investigation, untagged, look-alike tags, uncorrelated)
// from the same connections. A history query by tag from another process
// returns exactly the investigation's events, with their verified
// publishers; an anonymous one only those on the public topic; and the
// CLI's `eventbus history --tag` prints the same.
func TestCorrelationForensicTags(t *testing.T) {
	// Build the CLI while the processes run. The test waits for the
	// build even if it ends early, so that no go build outlives it.
	building := make(chan struct{})
	go func() {
		defer close(building)
		proctest.Build()
	}()
	t.Cleanup(func() { <-building })
	f := newCorrFixture(t)
	incident := correlation.NewID()
	const tagged = 5
	emitters := []*emitter{
		{name: "procmond-1", component: "procmond", topic: "events.process.lifecycle"},
		{name: "procmond-2", component: "procmond", topic: "events.process.anomaly", public: true},
		{name: "netmond-1", component: "netmond", topic: "events.network.connections"},
	}
	for _, e := range emitters {
		e.p = start(t, e.name, "emit", nil, "-socket", f.socket, "-name", e.name, "-component", e.component,
			"-topic", e.topic, "-incident", incident, "-tagged", fmt.Sprint(tagged))
	}
	for _, e := range emitters {
		e.p.waitLine(t, corrTimeout, "emitted ")
		e.p.waitExit(t, corrTimeout)
	}
	want := func(publicOnly bool) map[string]*emitter {
		out := make(map[string]*emitter)
		for _, e := range emitters {
			for i := range tagged {
				if e.public || !publicOnly {
					out[fmt.Sprintf("%s tagged %d", e.name, i)] = e
				}
			}
		}
		return out
	}

	analyst := f.query(t, "analyst", "analyst", "-tags", investigationKey+"="+investigationID,
		"-tags", investigationKey+"="+investigationID+",analyst=alice", "-tags", investigationKey+"=INC-99999")
	for q := range 2 {
		got := decodeLines[corrEvent](t, analyst, fmt.Sprintf("history %d", q))
		checkForensic(t, fmt.Sprintf("analyst's History query %d", q), got, incident, want(false))
	}
	if other := decodeLines[corrEvent](t, analyst, "history 2"); len(other) != tagged*len(emitters) {
		t.Errorf("analyst: History(investigation_id=INC-99999) returned %d events; want %d", len(other), tagged*len(emitters))
	}
	anon := f.query(t, "anonymous", "", "-tags", investigationKey+"="+investigationID)
	checkForensic(t, "anonymous History", decodeLines[corrEvent](t, anon, "history 0"), incident, want(true))

	// The CLI prints the same: the analyst sees every event of the
	// investigation, an anonymous peer only the public topic's.
	for _, tt := range []struct {
		name       string
		as         []string
		publicOnly bool
	}{
		{"CLI", []string{"--as", "analyst"}, false},
		{"CLIAnonymous", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"history", "--tag", investigationKey + "=" + investigationID, "--json", "--socket", f.socket}, tt.as...)
			p := proctest.Run(t, proctest.Cmd{Path: proctest.Binary(t), Args: args, Name: "eventbus history"}, corrTimeout)
			if p.Err() != nil || p.Stderr.String() != "" {
				t.Fatalf("eventbus %s: %v; stderr:\n%s", strings.Join(args, " "), p.Err(), p.Stderr.String())
			}
			got, err := decodeCLIEvents([]byte(p.Stdout.String()))
			if err != nil {
				t.Fatalf("eventbus %s printed output that is not JSON events: %v\n%s", strings.Join(args, " "), err, p.Stdout.String())
			}
			checkForensic(t, "eventbus "+strings.Join(args, " "), got, incident, want(tt.publicOnly))
		})
	}
}

// checkForensic checks that got holds exactly the events of want (by
// payload), each from its emitter's pid and component, with the
// investigation's correlation and tags, in receive order.
func checkForensic(t *testing.T, who string, got []corrEvent, incident string, want map[string]*emitter) {
	t.Helper()
	seen := make(map[string]bool)
	for i, e := range got {
		em := want[e.Payload]
		switch {
		case em == nil:
			t.Errorf("%s: returned %s %q (tags %v), which is not one of the investigation's events", who, e.Topic, e.Payload, e.Meta.Tags)
			continue
		case seen[e.Payload]:
			t.Errorf("%s: returned %q twice", who, e.Payload)
		}
		seen[e.Payload] = true
		if e.PID != em.p.pid() || e.Component != em.component || e.Topic != em.topic {
			t.Errorf("%s: %q came from pid %d %q on %s; want pid %d %q on %s", who, e.Payload, e.PID, e.Component, e.Topic, em.p.pid(), em.component, em.topic)
		}
		tags := e.Meta.Tags
		if e.Meta.CorrelationID != incident || e.Meta.RootID != incident || e.Meta.Stage != "forensic_collection" ||
			e.Meta.SourceProcess != em.name || tags[investigationKey] != investigationID || tags["suspicious_pid"] != "4892" ||
			tags["analyst"] != "alice" || len(tags) != 3 {
			t.Errorf("%s: %q has correlation %+v; want id and root %s, stage forensic_collection, source %s, the three investigation tags",
				who, e.Payload, e.Meta, incident, em.name)
		}
		if i > 0 && !e.ReceivedAt.IsZero() && e.ReceivedAt.Before(got[i-1].ReceivedAt) {
			t.Errorf("%s: event %d received before event %d: not in receive order", who, i, i-1)
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("%s: did not return %q", who, p)
		}
	}
}

// cliEvent is what the test reads of `eventbus history --json`: the
// fields `eventbus sub --json` prints.
type cliEvent struct {
	Topic              string  `json:"topic"`
	Payload            *string `json:"payload"`
	PublisherPID       int     `json:"publisher_pid"`
	PublisherComponent string  `json:"publisher_component"`
	ReceivedAt         string  `json:"received_at"`
	Correlation        *struct {
		CorrelationID string            `json:"correlation_id"`
		ParentID      string            `json:"parent_id"`
		RootID        string            `json:"root_id"`
		Stage         string            `json:"stage"`
		SourceProcess string            `json:"source_process"`
		Tags          map[string]string `json:"tags"`
	} `json:"correlation"`
}

// decodeCLIEvents reads JSON events: one object per line, or an array of
// them, or objects holding an "events" array.
func decodeCLIEvents(out []byte) ([]corrEvent, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	var raws []json.RawMessage
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		switch v = bytes.TrimSpace(v); {
		case len(v) > 0 && v[0] == '[':
			var arr []json.RawMessage
			if err := json.Unmarshal(v, &arr); err != nil {
				return nil, err
			}
			raws = append(raws, arr...)
		default:
			var wrap struct {
				Events []json.RawMessage `json:"events"`
			}
			if err := json.Unmarshal(v, &wrap); err == nil && wrap.Events != nil {
				raws = append(raws, wrap.Events...)
			} else {
				raws = append(raws, v)
			}
		}
	}
	var evs []corrEvent
	for _, r := range raws {
		var c cliEvent
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
		e := corrEvent{Topic: c.Topic, PID: c.PublisherPID, Component: c.PublisherComponent}
		if c.Payload != nil {
			e.Payload = *c.Payload
		}
		if c.ReceivedAt != "" {
			at, err := time.Parse(time.RFC3339Nano, c.ReceivedAt)
			if err != nil {
				return nil, fmt.Errorf("received_at %q: %w", c.ReceivedAt, err)
			}
			e.ReceivedAt = at
		}
		if m := c.Correlation; m != nil {
			e.HasMeta = true
			e.Meta = correlation.Metadata{CorrelationID: m.CorrelationID, ParentID: m.ParentID, RootID: m.RootID,
				Stage: m.Stage, SourceProcess: m.SourceProcess, Tags: m.Tags}
		}
		evs = append(evs, e)
	}
	return evs, nil
}
