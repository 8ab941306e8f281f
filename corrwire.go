package eventbus

import (
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/wire"
)

// metadataFromWire converts received correlation metadata.
func metadataFromWire(c *wire.Correlation) correlation.Metadata {
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

// metadataToWire converts metadata for sending. Tags are shared, not
// copied: the result is encoded at once.
func metadataToWire(m *correlation.Metadata) *wire.Correlation {
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

// decodeCorrelation decodes an encoded Correlation into m, with strings
// from in. tags becomes m.Tags, cleared first: the broker passes one map
// per connection, reused since the tracker does not keep it; nil makes a
// new one where there are tags.
func decodeCorrelation(b []byte, v *wire.CorrelationView, in *interner, tags map[string]string, m *correlation.Metadata) error {
	if err := wire.DecodeCorrelation(b, v); err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed correlation: %v", err)
	}
	clear(tags)
	if tags == nil && len(v.Tags) > 0 {
		tags = make(map[string]string, len(v.Tags))
	}
	for _, kv := range v.Tags {
		tags[in.get(kv[0])] = in.get(kv[1])
	}
	*m = correlation.Metadata{
		CorrelationID: in.get(v.CorrelationID),
		ParentID:      in.get(v.ParentID),
		RootID:        in.get(v.RootID),
		Sequence:      v.Sequence,
		Stage:         in.get(v.Stage),
		SourceProcess: in.get(v.SourceProcess),
		Tags:          tags,
		StartedAt:     fromUnixNano(v.StartedAt),
	}
	return nil
}

// publisherCorrelation is a connection's state for its correlated
// publishes. A publisher usually repeats its metadata but the sequence
// number; shape recognizes that, and then the broker neither decodes nor
// validates it again and the Recorder reuses what it resolved.
type publisherCorrelation struct {
	shape    wire.CorrelationShape // the metadata last recorded
	corrView wire.CorrelationView
	meta     correlation.Metadata // decoded; Tags is owned here
	rec      *correlation.Recorder
	ev       correlation.Event // checked, to record; its payload aliases the frame

	// The publish routed and not yet recorded (see conn.frameDone).
	pending bool
	repeat  bool             // its metadata repeats the last recorded
	view    wire.PublishView // aliases the frame
}

// checkCorrelation decodes and checks a correlated publish (SPEC §5) and
// returns its metadata for routing, valid until the connection's next
// publish, and whether it repeats the last metadata recorded but for the
// sequence number; recordCorrelation then records it. Invalid metadata is
// refused, never truncated. A repeat needs no decoding and no checks, so
// this touches as little as it can before the message is delivered.
func (c *conn) checkCorrelation(v *wire.PublishView) (meta *correlation.Metadata, repeat bool, err error) {
	pc := &c.corr
	meta = &pc.meta
	seq, repeat := pc.shape.Match(v.Correlation)
	if repeat {
		meta.Sequence = seq
		return meta, true, nil
	}
	pc.shape.Reset()
	if meta.Tags == nil {
		meta.Tags = make(map[string]string)
	}
	if err := decodeCorrelation(v.Correlation, &pc.corrView, &c.strs, meta.Tags, meta); err != nil {
		return nil, false, err
	}
	if pc.rec == nil {
		pc.rec = c.b.tracker.NewRecorder()
	}
	c.stageEvent(v)
	if err := pc.rec.Check(&pc.ev, false); err != nil {
		return nil, false, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err)
	}
	pc.shape.Set(v.Correlation) // validated: a repeat may skip that
	return meta, false, nil
}

// stageEvent sets c.corr.ev to the publish v with the decoded metadata.
func (c *conn) stageEvent(v *wire.PublishView) {
	pc := &c.corr
	pc.ev = correlation.Event{
		Topic:              c.strs.get(v.Topic),
		Payload:            v.Payload,
		PublishedAt:        time.Unix(0, v.PublishedAt),
		ReceivedAt:         time.Unix(0, c.readAt),
		PublisherPID:       c.peer.PID,
		PublisherUID:       c.peer.UID,
		PublisherComponent: c.component,
		Metadata:           pc.meta,
		Final:              v.Final,
	}
}

// recordCorrelation records the publish checkCorrelation accepted. It
// cannot be refused: a repeat's metadata passed the checks before, and
// Config.Validate makes the history large enough for any message. It can
// fail only once the broker is shutting down; the message was delivered.
func (c *conn) recordCorrelation() {
	pc := &c.corr
	err := error(nil)
	if pc.repeat {
		c.stageEvent(&pc.view)
		err = pc.rec.Check(&pc.ev, true)
	}
	if err == nil {
		err = pc.rec.Record(&pc.ev)
	}
	if err != nil {
		c.b.cfg.Logger.Warn("correlated publish delivered but not recorded", "conn", c.id, "pid", c.peer.PID, "err", err)
	}
	// Do not pin the read buffer.
	pc.pending, pc.view, pc.ev.Payload = false, wire.PublishView{}, nil
}

// filterFromWire converts a received subscription filter.
func filterFromWire(f *wire.CorrelationFilter) correlation.Filter {
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

// filterToWire converts a subscription filter for sending.
func filterToWire(f *correlation.Filter) *wire.CorrelationFilter {
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

// compileFilter validates a SUBSCRIBE's filter; nil means none.
func compileFilter(wf *wire.CorrelationFilter) (*correlation.Compiled, error) {
	if wf == nil {
		return nil, nil
	}
	f := filterFromWire(wf)
	if f.IsEmpty() {
		return nil, nil
	}
	c, err := f.Compile()
	if err != nil {
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "subscribe filter: %v", err)
	}
	return c, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// eventToWire converts a recorded event to the envelope a subscriber
// would have received.
func eventToWire(e *correlation.Event) *wire.Envelope {
	return &wire.Envelope{
		Topic:              e.Topic,
		Payload:            e.Payload,
		PublishedAt:        unixNano(e.PublishedAt),
		Correlation:        metadataToWire(&e.Metadata),
		Final:              e.Final,
		ReceivedAt:         unixNano(e.ReceivedAt),
		PublisherPid:       int32(e.PublisherPID),
		PublisherUid:       e.PublisherUID,
		PublisherComponent: e.PublisherComponent,
	}
}

// envelopeToMessage converts a history or wait result.
func envelopeToMessage(e *wire.Envelope) *Message {
	m := &Message{
		Topic:              e.Topic,
		Payload:            e.Payload,
		PublishedAt:        fromUnixNano(e.PublishedAt),
		ReceivedAt:         fromUnixNano(e.ReceivedAt),
		PublisherPID:       int(e.PublisherPid),
		PublisherUID:       e.PublisherUid,
		PublisherComponent: e.PublisherComponent,
		Final:              e.Final,
	}
	if e.Correlation != nil {
		meta := metadataFromWire(e.Correlation)
		m.meta = &meta
	}
	return m
}

func timelineToWire(e *correlation.TimelineEntry) *wire.TimelineEntry {
	return &wire.TimelineEntry{
		ReceivedAt: unixNano(e.ReceivedAt), Stage: e.Stage, SourceProcess: e.SourceProcess,
		PublisherPid: int32(e.PublisherPID), PublisherComponent: e.PublisherComponent, Topic: e.Topic,
		CorrelationId: e.CorrelationID, ParentId: e.ParentID, Sequence: e.Sequence, Final: e.Final, Depth: uint32(e.Depth),
	}
}

func timelineFromWire(e *wire.TimelineEntry) correlation.TimelineEntry {
	return correlation.TimelineEntry{
		ReceivedAt: fromUnixNano(e.ReceivedAt), Stage: e.Stage, SourceProcess: e.SourceProcess,
		PublisherPID: int(e.PublisherPid), PublisherComponent: e.PublisherComponent, Topic: e.Topic,
		CorrelationID: e.CorrelationId, ParentID: e.ParentId, Sequence: e.Sequence, Final: e.Final, Depth: int(e.Depth),
	}
}

func activityToWire(a correlation.Activity) *wire.Activity {
	return &wire.Activity{FirstSeen: unixNano(a.FirstSeen), LastSeen: unixNano(a.LastSeen), Events: uint64(a.Events), Finals: uint64(a.Finals)}
}

func activityFromWire(a *wire.Activity) correlation.Activity {
	if a == nil {
		return correlation.Activity{}
	}
	return correlation.Activity{FirstSeen: fromUnixNano(a.FirstSeen), LastSeen: fromUnixNano(a.LastSeen), Events: int(a.Events), Finals: int(a.Finals)}
}

func workflowToWire(w *correlation.WorkflowState) *wire.WorkflowState {
	out := &wire.WorkflowState{RootId: w.RootID, Activity: activityToWire(w.Activity), StartedAt: unixNano(w.StartedAt),
		PayloadBytes: w.PayloadBytes, Untracked: uint64(w.Untracked)}
	for _, s := range w.Stages {
		out.Stages = append(out.Stages, &wire.StageState{Name: s.Name, Activity: activityToWire(s.Activity), Completed: s.Completed, CompletedAt: unixNano(s.CompletedAt)})
	}
	for _, c := range w.Correlations {
		out.Correlations = append(out.Correlations, &wire.CorrelationState{Id: c.ID, ParentId: c.ParentID, Stage: c.Stage, Activity: activityToWire(c.Activity)})
	}
	for _, p := range w.Processes {
		out.Processes = append(out.Processes, &wire.ProcessState{Pid: int32(p.PID), Component: p.Component, Activity: activityToWire(p.Activity)})
	}
	return out
}

func workflowFromWire(w *wire.WorkflowState) correlation.WorkflowState {
	out := correlation.WorkflowState{RootID: w.RootId, Activity: activityFromWire(w.Activity), StartedAt: fromUnixNano(w.StartedAt),
		PayloadBytes: w.PayloadBytes, Untracked: int(w.Untracked)}
	for _, s := range w.Stages {
		out.Stages = append(out.Stages, correlation.StageState{Name: s.Name, Activity: activityFromWire(s.Activity), Completed: s.Completed, CompletedAt: fromUnixNano(s.CompletedAt)})
	}
	for _, c := range w.Correlations {
		out.Correlations = append(out.Correlations, correlation.CorrelationState{ID: c.Id, ParentID: c.ParentId, Stage: c.Stage, Activity: activityFromWire(c.Activity)})
	}
	for _, p := range w.Processes {
		out.Processes = append(out.Processes, correlation.ProcessState{PID: int(p.Pid), Component: p.Component, Activity: activityFromWire(p.Activity)})
	}
	return out
}

func summaryToWire(s *correlation.WorkflowSummary) *wire.WorkflowSummary {
	return &wire.WorkflowSummary{RootId: s.RootID, Activity: activityToWire(s.Activity), CurrentStage: s.CurrentStage,
		Stages: uint32(s.Stages), CompletedStages: uint32(s.CompletedStages), Correlations: uint32(s.Correlations), Processes: uint32(s.Processes)}
}

func summaryFromWire(s *wire.WorkflowSummary) correlation.WorkflowSummary {
	return correlation.WorkflowSummary{RootID: s.RootId, Activity: activityFromWire(s.Activity), CurrentStage: s.CurrentStage,
		Stages: int(s.Stages), CompletedStages: int(s.CompletedStages), Correlations: int(s.Correlations), Processes: int(s.Processes)}
}
