// Package wireconv converts between the wire schema and the correlation
// and stats types, for the broker and the client alike.
package wireconv

import (
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/intern"
	"daemoneye.dev/eventbus/wire"
)

// MetadataFromWire converts received correlation metadata.
func MetadataFromWire(c *wire.Correlation) correlation.Metadata {
	m := correlation.Metadata{
		CorrelationID: c.CorrelationId,
		ParentID:      c.ParentId,
		RootID:        c.RootId,
		Sequence:      c.Sequence,
		Stage:         c.Stage,
		SourceProcess: c.SourceProcess,
		Tags:          c.Tags,
	}
	if c.StartedAt != 0 {
		m.StartedAt = time.Unix(0, c.StartedAt)
	}
	return m
}

// MetadataToWire converts metadata for sending. Tags are shared, not
// copied: the result is encoded at once.
func MetadataToWire(m *correlation.Metadata) *wire.Correlation {
	c := &wire.Correlation{
		CorrelationId: m.CorrelationID,
		ParentId:      m.ParentID,
		RootId:        m.RootID,
		Sequence:      m.Sequence,
		Stage:         m.Stage,
		SourceProcess: m.SourceProcess,
		Tags:          m.Tags,
	}
	if !m.StartedAt.IsZero() {
		c.StartedAt = m.StartedAt.UnixNano()
	}
	return c
}

// DecodeMetadata decodes an encoded Correlation into m, with strings
// from in. tags, cleared first, becomes m.Tags; nil makes a new map where
// there are tags.
func DecodeMetadata(b []byte, v *wire.CorrelationView, in *intern.Table, tags map[string]string, m *correlation.Metadata) error {
	if err := wire.DecodeCorrelation(b, v); err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed correlation: %v", err)
	}
	clear(tags)
	if tags == nil && len(v.Tags) > 0 {
		tags = make(map[string]string, len(v.Tags))
	}
	for _, kv := range v.Tags {
		tags[in.Get(kv[0])] = in.Get(kv[1])
	}
	*m = correlation.Metadata{
		CorrelationID: in.Get(v.CorrelationID),
		ParentID:      in.Get(v.ParentID),
		RootID:        in.Get(v.RootID),
		Sequence:      v.Sequence,
		Stage:         in.Get(v.Stage),
		SourceProcess: in.Get(v.SourceProcess),
		Tags:          tags,
		StartedAt:     FromUnixNano(v.StartedAt),
	}
	return nil
}

// FilterFromWire converts a received subscription filter.
func FilterFromWire(f *wire.CorrelationFilter) correlation.Filter {
	return correlation.Filter{
		CorrelationIDs: f.CorrelationIds,
		ParentIDs:      f.ParentIds,
		RootIDs:        f.RootIds,
		Stages:         f.Stages,
		RequiredTags:   f.RequiredTags,
		AnyTags:        f.AnyTags,
		MinSequence:    f.MinSequence,
		MaxSequence:    f.MaxSequence,
	}
}

// FilterToWire converts a subscription filter for sending.
func FilterToWire(f *correlation.Filter) *wire.CorrelationFilter {
	return &wire.CorrelationFilter{
		CorrelationIds: f.CorrelationIDs,
		ParentIds:      f.ParentIDs,
		RootIds:        f.RootIDs,
		Stages:         f.Stages,
		RequiredTags:   f.RequiredTags,
		AnyTags:        f.AnyTags,
		MinSequence:    f.MinSequence,
		MaxSequence:    f.MaxSequence,
	}
}

// UnixNano is t in Unix nanoseconds, 0 for the zero time.
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNano is the time of n Unix nanoseconds, the zero time for 0.
func FromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// EventToWire converts a recorded event to the envelope a subscriber
// would have received.
func EventToWire(e *correlation.Event) *wire.Envelope {
	return &wire.Envelope{
		Topic:              e.Topic,
		Payload:            e.Payload,
		PublishedAt:        UnixNano(e.PublishedAt),
		Correlation:        MetadataToWire(&e.Metadata),
		Final:              e.Final,
		ReceivedAt:         UnixNano(e.ReceivedAt),
		PublisherPid:       int32(e.PublisherPID),
		PublisherUid:       e.PublisherUID,
		PublisherComponent: e.PublisherComponent,
	}
}

// TimelineToWire converts a timeline entry for sending.
func TimelineToWire(e *correlation.TimelineEntry) *wire.TimelineEntry {
	return &wire.TimelineEntry{
		ReceivedAt: UnixNano(e.ReceivedAt), Stage: e.Stage, SourceProcess: e.SourceProcess,
		PublisherPid: int32(e.PublisherPID), PublisherComponent: e.PublisherComponent, Topic: e.Topic,
		CorrelationId: e.CorrelationID, ParentId: e.ParentID, Sequence: e.Sequence, Final: e.Final, Depth: uint32(e.Depth),
	}
}

// TimelineFromWire converts a received timeline entry.
func TimelineFromWire(e *wire.TimelineEntry) correlation.TimelineEntry {
	return correlation.TimelineEntry{
		ReceivedAt: FromUnixNano(e.ReceivedAt), Stage: e.Stage, SourceProcess: e.SourceProcess,
		PublisherPID: int(e.PublisherPid), PublisherComponent: e.PublisherComponent, Topic: e.Topic,
		CorrelationID: e.CorrelationId, ParentID: e.ParentId, Sequence: e.Sequence, Final: e.Final, Depth: int(e.Depth),
	}
}

func activityToWire(a correlation.Activity) *wire.Activity {
	return &wire.Activity{FirstSeen: UnixNano(a.FirstSeen), LastSeen: UnixNano(a.LastSeen), Events: uint64(a.Events), Finals: uint64(a.Finals)}
}

func activityFromWire(a *wire.Activity) correlation.Activity {
	if a == nil {
		return correlation.Activity{}
	}
	return correlation.Activity{FirstSeen: FromUnixNano(a.FirstSeen), LastSeen: FromUnixNano(a.LastSeen), Events: int(a.Events), Finals: int(a.Finals)}
}

// WorkflowToWire converts a workflow's state for sending.
func WorkflowToWire(w *correlation.WorkflowState) *wire.WorkflowState {
	out := &wire.WorkflowState{RootId: w.RootID, Activity: activityToWire(w.Activity), StartedAt: UnixNano(w.StartedAt),
		PayloadBytes: w.PayloadBytes, Untracked: uint64(w.Untracked)}
	for _, s := range w.Stages {
		out.Stages = append(out.Stages, &wire.StageState{Name: s.Name, Activity: activityToWire(s.Activity), Completed: s.Completed, CompletedAt: UnixNano(s.CompletedAt)})
	}
	for _, c := range w.Correlations {
		out.Correlations = append(out.Correlations, &wire.CorrelationState{Id: c.ID, ParentId: c.ParentID, Stage: c.Stage, Activity: activityToWire(c.Activity)})
	}
	for _, p := range w.Processes {
		out.Processes = append(out.Processes, &wire.ProcessState{Pid: int32(p.PID), Component: p.Component, Activity: activityToWire(p.Activity)})
	}
	return out
}

// WorkflowFromWire converts a received workflow state.
func WorkflowFromWire(w *wire.WorkflowState) correlation.WorkflowState {
	out := correlation.WorkflowState{RootID: w.RootId, Activity: activityFromWire(w.Activity), StartedAt: FromUnixNano(w.StartedAt),
		PayloadBytes: w.PayloadBytes, Untracked: int(w.Untracked)}
	for _, s := range w.Stages {
		out.Stages = append(out.Stages, correlation.StageState{Name: s.Name, Activity: activityFromWire(s.Activity), Completed: s.Completed, CompletedAt: FromUnixNano(s.CompletedAt)})
	}
	for _, c := range w.Correlations {
		out.Correlations = append(out.Correlations, correlation.CorrelationState{ID: c.Id, ParentID: c.ParentId, Stage: c.Stage, Activity: activityFromWire(c.Activity)})
	}
	for _, p := range w.Processes {
		out.Processes = append(out.Processes, correlation.ProcessState{PID: int(p.Pid), Component: p.Component, Activity: activityFromWire(p.Activity)})
	}
	return out
}

// SummaryToWire converts a workflow summary for sending.
func SummaryToWire(s *correlation.WorkflowSummary) *wire.WorkflowSummary {
	return &wire.WorkflowSummary{RootId: s.RootID, Activity: activityToWire(s.Activity), CurrentStage: s.CurrentStage,
		Stages: uint32(s.Stages), CompletedStages: uint32(s.CompletedStages), Correlations: uint32(s.Correlations), Processes: uint32(s.Processes)}
}

// SummaryFromWire converts a received workflow summary.
func SummaryFromWire(s *wire.WorkflowSummary) correlation.WorkflowSummary {
	return correlation.WorkflowSummary{RootID: s.RootId, Activity: activityFromWire(s.Activity), CurrentStage: s.CurrentStage,
		Stages: int(s.Stages), CompletedStages: int(s.CompletedStages), Correlations: int(s.Correlations), Processes: int(s.Processes)}
}
