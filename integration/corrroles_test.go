//go:build linux

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/correlation"
)

// The roles of the correlation tests (docs/CORRELATION.md, correlation_test.go):
// collectors that answer correlated tasks, an agent that runs workflows
// over the socket, an analyst that queries the broker's tracker, and
// emitters of tagged and untagged events. Each prints what it saw as
// "<kind> <json>" lines the test decodes.

// Topics of the correlation workflows (docs/TOPICS.md §2, the topic map).
const (
	taskProcess = "control.collector.task.process"
	taskNetwork = "control.collector.task.network"
	agentSource = "daemoneye-agent"
)

// Timeouts of the correlation roles. A wait for results gives up well
// before the test stops waiting for its outcome, so that a wait that
// fails is reported with what it saw.
const (
	roleTimeout = 20 * time.Second // dial, publish, flush, query
	roleWait    = 10 * time.Second // a wait for results
)

// corrEvent is one correlated message as a role prints it, from a
// client's Message or the tracker's Event alike.
type corrEvent struct {
	Topic      string               `json:"topic"`
	Payload    string               `json:"payload"`
	PID        int                  `json:"pid"`
	Component  string               `json:"component"`
	Final      bool                 `json:"final"`
	ReceivedAt time.Time            `json:"received_at"`
	Meta       correlation.Metadata `json:"meta"`
	HasMeta    bool                 `json:"has_meta"`
}

func fromMessage(m *eventbus.Message) corrEvent {
	e := corrEvent{Topic: m.Topic, Payload: string(m.Payload), PID: m.PublisherPID, Component: m.PublisherComponent,
		Final: m.Final, ReceivedAt: m.ReceivedAt}
	if m.Correlation() != nil {
		e.Meta, e.HasMeta = *m.Correlation(), true
	}
	return e
}

func fromEvent(ev correlation.Event) corrEvent {
	return corrEvent{Topic: ev.Topic, Payload: string(ev.Payload), PID: ev.PublisherPID, Component: ev.PublisherComponent,
		Final: ev.Final, ReceivedAt: ev.ReceivedAt, Meta: ev.Metadata, HasMeta: true}
}

// sayJSON prints "<kind> <v as JSON>".
func sayJSON(kind string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		say("%s-err marshal: %v", kind, err)
		return
	}
	say("%s %s", kind, b)
}

// errText is "ok" for nil, else the error on one line.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return oneLine(err)
}

// dialAs dials the broker at path, claiming the identity id names.
func dialAs(path, name string, id *identityFlags) (*eventbus.Client, error) {
	opts, err := id.options()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	return eventbus.Dial(ctx, path, append(opts, eventbus.WithName(name), eventbus.WithReconnect(false))...)
}

// --- in-process agent (broker role, -agent-wait) ---

// agentTask is the broker's in-process client acting as the agent of
// the seed's single-stage workflow: it publishes a correlated task on
// control.collector.task.process and waits on the broker's own tracker
// for final results from n publishers. It prints "agent-task <id>", one
// "agent-result <json>" per event returned and "agent-waited <id> <count>
// <ok|error>".
func agentTask(b *broker.Broker, agent *eventbus.Client, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	meta := correlation.New(correlation.WithStage("enumeration"), correlation.WithSource(agentSource))
	id := meta.CorrelationID
	say("agent-task %s", id)
	err := agent.Publish(ctx, taskProcess, []byte(`{"task":"enumerate","by":"in-process agent"}`), eventbus.WithCorrelation(meta))
	if err == nil {
		err = agent.Flush(ctx)
	}
	if err != nil {
		say("agent-waited %s 0 %s", id, errText(err))
		return
	}
	wctx, wcancel := context.WithTimeout(ctx, roleWait)
	defer wcancel()
	evs, err := b.Tracker().Wait(wctx, id, correlation.FinalPublishers(n))
	for _, ev := range evs {
		sayJSON("agent-result", fromEvent(ev))
	}
	say("agent-waited %s %d %s", id, len(evs), errText(err))
}

// --- collector ---

// collectorMain is a collector (procmond, netmond): it subscribes to
// -task, with a correlation filter on -stages if given, and answers each
// correlated task with -results messages on -result-topic carrying the
// task's correlation (its id, parent, root, stage and tags; the source
// process set to -name), the last one marked final. It prints
// "subscribed", then "answered <correlation-id> <stage> <n>" per task,
// until SIGTERM.
func collectorMain(args []string) error {
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	name := fs.String("name", "collector", "source process name put in the answers")
	task := fs.String("task", taskProcess, "task pattern to subscribe to")
	stages := fs.String("stages", "", "comma-separated stages the broker's filter lets through (default: all)")
	resultTopic := fs.String("result-topic", "events.process.batch", "topic of the answers")
	results := fs.Int("results", 1, "answers per task; the last is final")
	var id identityFlags
	id.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	c, err := dialAs(*path, *name, &id)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	opts := eventbus.SubscribeOptions{Patterns: []string{*task}}
	if *stages != "" {
		opts.Filter = &correlation.Filter{Stages: splitList(*stages)}
	}
	sub, err := c.SubscribeWith(ctx, opts)
	if err != nil {
		return err
	}
	say("subscribed")
	for {
		select {
		case <-sig:
			return nil
		case m, ok := <-sub.C:
			if !ok {
				return errors.New("subscription channel closed")
			}
			if m.Correlation() == nil {
				say("ignored %s uncorrelated task", m.Topic)
				continue
			}
			if err := answer(c, m, *name, *resultTopic, *results); err != nil {
				return err
			}
		}
	}
}

// answer publishes n results for task m with its correlation, the last
// final, and flushes so that a refusal is an error here.
func answer(c *eventbus.Client, m *eventbus.Message, name, resultTopic string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	meta := m.Correlation().Clone()
	meta.SourceProcess = name
	for i := range n {
		opts := []eventbus.PublishOption{eventbus.WithCorrelation(meta)}
		if i == n-1 {
			opts = append(opts, eventbus.WithFinal())
		}
		body := fmt.Appendf(nil, "%s result %d/%d for %s", name, i+1, n, m.Payload)
		if err := c.Publish(ctx, resultTopic, body, opts...); err != nil {
			return fmt.Errorf("answer %s: %w", meta.CorrelationID, err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		return fmt.Errorf("answer %s: %w", meta.CorrelationID, err)
	}
	say("answered %s %s %d", meta.CorrelationID, meta.Stage, n)
	return nil
}

// --- agent over the socket ---

// agentMain is the agent as a separate process, a socket client (claim it
// with -component agent -token-file F). -mode:
//
//	single:   the seed's single-stage workflow: prints "task <id>",
//	          publishes a task on control.collector.task.process, waits
//	          (Client.Wait) for final results from -finals publishers and
//	          prints "result <json>" per message and "waited <count>
//	          <ok|error>"; then waits again for one publisher more with a
//	          -unmet-after deadline and prints "unmet <count> <is
//	          ErrWaitUnmet> <error>".
//	workflow: the multi-stage workflow enumeration → integrity →
//	          network_analysis, each stage a child of the one before:
//	          prints "root <id>", then per stage "stage <name> <id>",
//	          publishes its task, waits for one final result and prints
//	          "result <json>" per message; then "done".
func agentMain(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	mode := fs.String("mode", "single", "single or workflow")
	finals := fs.Int("finals", 2, "single: final publishers to wait for")
	unmetAfter := fs.Duration("unmet-after", 300*time.Millisecond, "single: deadline of the wait that cannot be met")
	var id identityFlags
	id.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dialAs(*path, "agent", &id)
	if err != nil {
		return err
	}
	defer c.Close()
	switch *mode {
	case "single":
		return agentSingle(c, *finals, *unmetAfter)
	case "workflow":
		return agentWorkflow(c)
	}
	return fmt.Errorf("unknown mode %q", *mode)
}

// publishTask publishes a task with meta and flushes.
func publishTask(c *eventbus.Client, topicName string, meta correlation.Metadata, task string) error {
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	if err := c.Publish(ctx, topicName, []byte(task), eventbus.WithCorrelation(meta)); err != nil {
		return err
	}
	return c.Flush(ctx)
}

func agentSingle(c *eventbus.Client, finals int, unmetAfter time.Duration) error {
	meta := correlation.New(correlation.WithStage("enumeration"), correlation.WithSource(agentSource))
	id := meta.CorrelationID
	say("task %s", id)
	if err := publishTask(c, taskProcess, meta, `{"task":"enumerate","by":"agent process"}`); err != nil {
		return fmt.Errorf("task: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), roleWait)
	defer cancel()
	msgs, err := c.Wait(ctx, id, correlation.FinalPublishers(finals))
	for _, m := range msgs {
		sayJSON("result", fromMessage(m))
	}
	say("waited %d %s", len(msgs), errText(err))
	// No more publishers will answer: this wait ends at its deadline, with
	// what was collected.
	uctx, ucancel := context.WithTimeout(context.Background(), unmetAfter)
	defer ucancel()
	msgs, err = c.Wait(uctx, id, correlation.FinalPublishers(finals+1))
	say("unmet %d %t %s", len(msgs), errors.Is(err, eventbus.ErrWaitUnmet), errText(err))
	return nil
}

// workflowStages are the stages of the multi-stage workflow, in order,
// with the topic each stage's task goes to.
var workflowStages = []struct{ name, topic, task string }{
	{"enumeration", taskProcess, `{"task":"enumerate"}`},
	{"integrity", taskProcess, `{"task":"hash","pids":[4892]}`},
	{"network_analysis", taskNetwork, `{"task":"connections","pids":[4892]}`},
}

func agentWorkflow(c *eventbus.Client) error {
	var meta correlation.Metadata
	for i, st := range workflowStages {
		if i == 0 {
			meta = correlation.New(correlation.WithStage(st.name), correlation.WithSource(agentSource))
			say("root %s", meta.RootID)
		} else {
			meta = meta.NewChild(correlation.WithStage(st.name), correlation.WithTag("parent_stage", workflowStages[i-1].name))
		}
		say("stage %s %s", st.name, meta.CorrelationID)
		if err := publishTask(c, st.topic, meta, st.task); err != nil {
			return fmt.Errorf("stage %s task: %w", st.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), roleWait)
		msgs, err := c.Wait(ctx, meta.CorrelationID, correlation.FinalPublishers(1))
		cancel()
		for _, m := range msgs {
			sayJSON("result", fromMessage(m))
		}
		if err != nil {
			return fmt.Errorf("stage %s: %w", st.name, err)
		}
	}
	say("done")
	return nil
}

// --- analyst queries ---

// tagQueries collects repeated -tags flags.
type tagQueries []map[string]string

func (q *tagQueries) String() string { return fmt.Sprint(*q) }

func (q *tagQueries) Set(s string) error {
	tags := make(map[string]string)
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("tag %q: want key=value", kv)
		}
		tags[k] = v
	}
	*q = append(*q, tags)
	return nil
}

// queryMain asks the broker's tracker over the socket, as the identity
// its flags claim, and prints, for what was asked:
//
//	-timeline ROOT:  "timeline <json TimelineEntry>" per entry, or "timeline-err ..."
//	-workflow ROOT:  "workflow <json WorkflowState>", "workflow-missing" or "workflow-err ..."
//	-workflows:      "workflows <json WorkflowSummary>" per workflow, or "workflows-err ..."
//	-tags k=v,...:   (repeatable; query i from 0) "history <i> <json>" per
//	                 event and "history-count <i> <n>", or "history-err <i> ..."
//
// where "...-err" lines read "forbidden=<bool> <error>"; then "done".
func queryMain(args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	timeline := fs.String("timeline", "", "root id whose timeline to print")
	workflow := fs.String("workflow", "", "root id whose workflow state to print")
	workflows := fs.Bool("workflows", false, "print the workflow summaries")
	var tags tagQueries
	fs.Var(&tags, "tags", "history query by tags, key=value,... (repeatable)")
	var id identityFlags
	id.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dialAs(*path, "analyst", &id)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	sayErr := func(kind string, err error) {
		say("%s forbidden=%t %s", kind, errors.Is(err, eventbus.ErrForbidden), oneLine(err))
	}
	if *timeline != "" {
		entries, err := c.Timeline(ctx, *timeline)
		if err != nil {
			sayErr("timeline-err", err)
		}
		for _, e := range entries {
			sayJSON("timeline", e)
		}
	}
	if *workflow != "" {
		switch w, found, err := c.Workflow(ctx, *workflow); {
		case err != nil:
			sayErr("workflow-err", err)
		case !found:
			say("workflow-missing")
		default:
			sayJSON("workflow", w)
		}
	}
	if *workflows {
		sums, err := c.Workflows(ctx)
		if err != nil {
			sayErr("workflows-err", err)
		}
		for _, s := range sums {
			sayJSON("workflows", s)
		}
	}
	for i, q := range tags {
		msgs, err := c.History(ctx, eventbus.HistoryQuery{Tags: q})
		if err != nil {
			sayErr(fmt.Sprintf("history-err %d", i), err)
			continue
		}
		for _, m := range msgs {
			sayJSON(fmt.Sprintf("history %d", i), fromMessage(m))
		}
		say("history-count %d %d", i, len(msgs))
	}
	say("done")
	return nil
}

// --- emitter of forensic events ---

// Tags of the seed's forensic scenario.
const (
	investigationKey = "investigation_id"
	investigationID  = "INC-12345"
)

// emitMain publishes -tagged events on -topic tagged with the
// investigation (correlation -incident, tags investigation_id=INC-12345,
// suspicious_pid=4892, analyst=alice), payload "<name> tagged <i>", each
// followed by noise from the same connection: another investigation's
// events, correlated events without tags, events whose tags look like the
// investigation's but are not, and uncorrelated ones. It flushes, prints
// "emitted <tagged>" and exits.
func emitMain(args []string) error {
	fs := flag.NewFlagSet("emit", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	name := fs.String("name", "emitter", "source process name, and payload prefix")
	topicName := fs.String("topic", "events.process.lifecycle", "topic of every event")
	incident := fs.String("incident", "", "correlation id of the investigation")
	tagged := fs.Int("tagged", 5, "events tagged with the investigation")
	var id identityFlags
	id.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dialAs(*path, *name, &id)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	forensic := correlation.Metadata{CorrelationID: *incident, RootID: *incident, Stage: "forensic_collection",
		SourceProcess: *name, StartedAt: time.Now(),
		Tags: map[string]string{investigationKey: investigationID, "suspicious_pid": "4892", "analyst": "alice"}}
	src := correlation.WithSource(*name)
	noise := []struct {
		kind string
		meta *correlation.Metadata
	}{
		{"other-investigation", ptr(correlation.New(src, correlation.WithStage("forensic_collection"),
			correlation.WithTag(investigationKey, "INC-99999"), correlation.WithTag("analyst", "alice")))},
		{"untagged", ptr(correlation.New(src, correlation.WithStage("enumeration")))},
		{"lookalike-value", ptr(correlation.New(src, correlation.WithTag(investigationKey, investigationID+"6")))},
		{"lookalike-key", ptr(correlation.New(src, correlation.WithTag("investigation", investigationID)))},
		// Same bytes as key+value of the investigation tag, split elsewhere.
		{"lookalike-split", ptr(correlation.New(src, correlation.WithTag("investigation_i", "d"+investigationID)))},
		{"uncorrelated", nil},
	}
	for i := range *tagged {
		if err := c.Publish(ctx, *topicName, fmt.Appendf(nil, "%s tagged %d", *name, i), eventbus.WithCorrelation(forensic)); err != nil {
			return err
		}
		for _, n := range noise {
			var opts []eventbus.PublishOption
			if n.meta != nil {
				opts = append(opts, eventbus.WithCorrelation(*n.meta))
			}
			if err := c.Publish(ctx, *topicName, fmt.Appendf(nil, "%s %s %d", *name, n.kind, i), opts...); err != nil {
				return err
			}
		}
	}
	if err := c.Flush(ctx); err != nil {
		return err
	}
	say("emitted %d", *tagged)
	return nil
}

func ptr[T any](v T) *T { return &v }
