package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
)

// Output of the correlation commands (history, wait, timeline, workflows,
// workflow): aligned text for people, one JSON object per line for
// scripts.

// eventTimeFormat is a received time in history and wait: local, to the
// microsecond, fixed width so the columns after it line up.
const eventTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// seenTimeFormat is a first or last seen time in the workflow tables.
const seenTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// table aligns rows of cells in columns two spaces apart, and passes notes
// (lines such as "── stage analysis") through as they are. Widths count
// runes; the last cell of a row is not padded. Cells are written as given:
// callers pass peer text through safe, so widths are of what is shown.
type table struct {
	rows []tableRow
}

type tableRow struct {
	cells []string
	note  string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, tableRow{cells: cells}) }

func (t *table) addNote(line string) { t.rows = append(t.rows, tableRow{note: line}) }

// write writes the table to w in one call.
func (t *table) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r.cells {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var buf []byte
	for _, r := range t.rows {
		if r.cells == nil {
			buf = append(append(buf, r.note...), '\n')
			continue
		}
		end := len(buf) // past the last non-empty cell: no trailing padding
		for i, c := range r.cells {
			buf = append(buf, c...)
			if c != "" {
				end = len(buf)
			}
			// A column empty in every row takes no room.
			if i < len(r.cells)-1 && widths[i] > 0 {
				for range widths[i] - utf8.RuneCountInString(c) + 2 {
					buf = append(buf, ' ')
				}
			}
		}
		buf = append(buf[:end], '\n')
	}
	_, err := w.Write(buf)
	return err
}

// idFormat prints correlation ids in text output: in full, or shortened.
type idFormat struct{ full bool }

// shortIDRunes is how much of a long id text output keeps.
const shortIDRunes = 12

// id returns id, or when it is longer than 16 runes and ids are not full,
// "…" and its last 12 runes: for a time-ordered UUID that is its random
// part, since ids made in the same millisecond share their beginning.
func (f idFormat) id(id string) string {
	if id == "" {
		return "-"
	}
	if f.full || utf8.RuneCountInString(id) <= 16 {
		return id
	}
	r := []rune(id)
	return "…" + string(r[len(r)-shortIDRunes:])
}

// payloadCell is a payload as one table cell: as is if it is printable
// UTF-8 text without tabs, else Go-quoted; "" when empty.
func payloadCell(p []byte) string {
	if len(p) > 0 && isPrintable(p) && !strings.ContainsRune(string(p), '\t') {
		return string(p)
	}
	return strconv.Quote(string(p))
}

// publisherCell is "pid/component", or the pid alone for an anonymous
// publisher.
func publisherCell(pid int, component string) string {
	if component == "" {
		return strconv.Itoa(pid)
	}
	return strconv.Itoa(pid) + "/" + safe(component)
}

func finalCell(final bool) string {
	if final {
		return "final"
	}
	return ""
}

// writeMessages prints history or wait results: with asJSON, as sub --json
// does; else one aligned line per message: received time, topic, stage,
// correlation id, publisher pid/component, "final" on a final result, and
// the payload.
func writeMessages(out, errOut io.Writer, msgs []*eventbus.Message, asJSON bool, ids idFormat) error {
	if asJSON {
		p := printer{out: out, errOut: errOut, json: true}
		for _, m := range msgs {
			if err := p.print(m); err != nil {
				return err
			}
		}
		return nil
	}
	var t table
	for _, m := range msgs {
		stage, corr := "-", "-"
		if c := m.Correlation(); c != nil {
			stage, corr = orDash(safe(c.Stage)), safe(ids.id(c.CorrelationID))
		}
		t.add(m.ReceivedAt.Local().Format(eventTimeFormat), safe(m.Topic), stage, corr,
			publisherCell(m.PublisherPID, m.PublisherComponent), finalCell(m.Final), payloadCell(m.Payload))
	}
	return t.write(out)
}

// jsonTimelineEntry is timeline --json's line.
type jsonTimelineEntry struct {
	ReceivedAt         string `json:"received_at"`
	Stage              string `json:"stage"`
	Topic              string `json:"topic"`
	SourceProcess      string `json:"source_process"`
	PublisherPID       int    `json:"publisher_pid"`
	PublisherComponent string `json:"publisher_component"`
	CorrelationID      string `json:"correlation_id"`
	ParentID           string `json:"parent_id,omitempty"`
	Sequence           uint64 `json:"sequence"`
	Final              bool   `json:"final,omitempty"`
	Depth              int    `json:"depth"`
}

// writeTimeline prints a workflow's timeline: a "── stage S" line where
// the stage changes from the previous entry's, then one line per event,
// indented two spaces per parent level: the time since the first event,
// stage, topic, source process, verified pid/component, correlation id,
// and "final" on a final result.
func writeTimeline(out io.Writer, entries []correlation.TimelineEntry, asJSON bool, ids idFormat) error {
	if asJSON {
		return writeJSONLines(out, len(entries), func(i int) any {
			e := &entries[i]
			return jsonTimelineEntry{
				ReceivedAt: rfc3339(e.ReceivedAt), Stage: e.Stage, Topic: e.Topic, SourceProcess: e.SourceProcess,
				PublisherPID: e.PublisherPID, PublisherComponent: e.PublisherComponent,
				CorrelationID: e.CorrelationID, ParentID: e.ParentID, Sequence: e.Sequence, Final: e.Final, Depth: e.Depth,
			}
		})
	}
	var t table
	for i, e := range entries {
		if i == 0 || e.Stage != entries[i-1].Stage {
			t.addNote("── stage " + orDash(safe(e.Stage)))
		}
		rel := "+" + e.ReceivedAt.Sub(entries[0].ReceivedAt).Round(time.Microsecond).String()
		t.add(strings.Repeat("  ", e.Depth)+rel, orDash(safe(e.Stage)), safe(e.Topic), orDash(safe(e.SourceProcess)),
			publisherCell(e.PublisherPID, e.PublisherComponent), safe(ids.id(e.CorrelationID)), finalCell(e.Final))
	}
	return t.write(out)
}

// jsonActivity is correlation.Activity in the JSON output.
type jsonActivity struct {
	Events    int    `json:"events"`
	Finals    int    `json:"finals"`
	FirstSeen string `json:"first_seen"`
	LastSeen  string `json:"last_seen"`
}

func activityJSON(a correlation.Activity) jsonActivity {
	return jsonActivity{Events: a.Events, Finals: a.Finals, FirstSeen: rfc3339(a.FirstSeen), LastSeen: rfc3339(a.LastSeen)}
}

// jsonWorkflowSummary is workflows --json's line.
type jsonWorkflowSummary struct {
	RootID          string `json:"root_id"`
	CurrentStage    string `json:"current_stage"`
	Stages          int    `json:"stages"`
	CompletedStages int    `json:"completed_stages"`
	Correlations    int    `json:"correlations"`
	Processes       int    `json:"processes"`
	jsonActivity
}

// writeWorkflows prints the active workflows, oldest first.
func writeWorkflows(out io.Writer, ws []correlation.WorkflowSummary, asJSON bool) error {
	if asJSON {
		return writeJSONLines(out, len(ws), func(i int) any {
			w := &ws[i]
			return jsonWorkflowSummary{RootID: w.RootID, CurrentStage: w.CurrentStage, Stages: w.Stages,
				CompletedStages: w.CompletedStages, Correlations: w.Correlations, Processes: w.Processes,
				jsonActivity: activityJSON(w.Activity)}
		})
	}
	var t table
	t.add("ROOT", "STAGE", "STAGES DONE", "CORRELATIONS", "PROCESSES", "EVENTS", "FIRST SEEN", "LAST SEEN")
	for _, w := range ws {
		t.add(safe(w.RootID), orDash(safe(w.CurrentStage)), fmt.Sprintf("%d/%d", w.CompletedStages, w.Stages),
			strconv.Itoa(w.Correlations), strconv.Itoa(w.Processes), events(w.Activity),
			seen(w.FirstSeen), seen(w.LastSeen))
	}
	return t.write(out)
}

// jsonWorkflow is workflow --json's output.
type jsonWorkflow struct {
	RootID       string             `json:"root_id"`
	StartedAt    string             `json:"started_at,omitempty"`
	PayloadBytes int64              `json:"payload_bytes"`
	Untracked    int                `json:"untracked"`
	Stages       []jsonStage        `json:"stages"`
	Correlations []jsonCorrState    `json:"correlations"`
	Processes    []jsonProcessState `json:"processes"`
	jsonActivity
}

type jsonStage struct {
	Name        string `json:"name"`
	Completed   bool   `json:"completed"`
	CompletedAt string `json:"completed_at,omitempty"`
	jsonActivity
}

type jsonCorrState struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	Stage    string `json:"stage"`
	jsonActivity
}

type jsonProcessState struct {
	PID       int    `json:"pid"`
	Component string `json:"component"`
	jsonActivity
}

func workflowJSON(w *correlation.WorkflowState) jsonWorkflow {
	j := jsonWorkflow{RootID: w.RootID, StartedAt: rfc3339(w.StartedAt), PayloadBytes: w.PayloadBytes,
		Untracked: w.Untracked, jsonActivity: activityJSON(w.Activity),
		Stages:       make([]jsonStage, 0, len(w.Stages)),
		Correlations: make([]jsonCorrState, 0, len(w.Correlations)),
		Processes:    make([]jsonProcessState, 0, len(w.Processes))}
	for _, s := range w.Stages {
		j.Stages = append(j.Stages, jsonStage{Name: s.Name, Completed: s.Completed,
			CompletedAt: rfc3339(s.CompletedAt), jsonActivity: activityJSON(s.Activity)})
	}
	for _, c := range w.Correlations {
		j.Correlations = append(j.Correlations, jsonCorrState{ID: c.ID, ParentID: c.ParentID, Stage: c.Stage,
			jsonActivity: activityJSON(c.Activity)})
	}
	for _, p := range w.Processes {
		j.Processes = append(j.Processes, jsonProcessState{PID: p.PID, Component: p.Component,
			jsonActivity: activityJSON(p.Activity)})
	}
	return j
}

// writeWorkflow prints one workflow's state: totals, then its stages,
// correlations (with parents) and processes in the order first seen.
func writeWorkflow(out io.Writer, w *correlation.WorkflowState, asJSON bool) error {
	if asJSON {
		return writeJSONLines(out, 1, func(int) any { return workflowJSON(w) })
	}
	var t table
	t.add("root", safe(w.RootID))
	if !w.StartedAt.IsZero() {
		t.add("started", seen(w.StartedAt))
	}
	t.add("events", fmt.Sprintf("%s, %s of payload", events(w.Activity), byteSize(int(w.PayloadBytes))))
	t.add("seen", seen(w.FirstSeen)+" to "+seen(w.LastSeen))
	if w.Untracked > 0 {
		t.add("untracked", fmt.Sprintf("%d events past the per-workflow limits", w.Untracked))
	}

	stages := table{}
	stages.addNote("\nSTAGES")
	stages.add("STAGE", "EVENTS", "COMPLETED", "FIRST SEEN", "LAST SEEN")
	for _, s := range w.Stages {
		done := "-"
		if s.Completed {
			done = seen(s.CompletedAt)
		}
		stages.add(safe(s.Name), events(s.Activity), done, seen(s.FirstSeen), seen(s.LastSeen))
	}

	corrs := table{}
	corrs.addNote("\nCORRELATIONS")
	corrs.add("CORRELATION", "PARENT", "STAGE", "EVENTS", "FIRST SEEN", "LAST SEEN")
	for _, c := range w.Correlations {
		corrs.add(safe(c.ID), orDash(safe(c.ParentID)), orDash(safe(c.Stage)), events(c.Activity), seen(c.FirstSeen), seen(c.LastSeen))
	}

	procs := table{}
	procs.addNote("\nPROCESSES")
	procs.add("PID", "COMPONENT", "EVENTS", "FIRST SEEN", "LAST SEEN")
	for _, p := range w.Processes {
		procs.add(strconv.Itoa(p.PID), orDash(safe(p.Component)), events(p.Activity), seen(p.FirstSeen), seen(p.LastSeen))
	}
	for _, t := range []*table{&t, &stages, &corrs, &procs} {
		if err := t.write(out); err != nil {
			return err
		}
	}
	return nil
}

// writeJSONLines writes n JSON objects, one per line, in one write.
func writeJSONLines(out io.Writer, n int, object func(i int) any) error {
	var buf []byte
	for i := range n {
		b, err := json.Marshal(object(i))
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	_, err := out.Write(buf)
	return err
}

// events is "N" or "N (F final)".
func events(a correlation.Activity) string {
	if a.Finals == 0 {
		return strconv.Itoa(a.Events)
	}
	return fmt.Sprintf("%d (%d final)", a.Events, a.Finals)
}

func seen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(seenTimeFormat)
}

// rfc3339 is t in UTC for JSON, "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
