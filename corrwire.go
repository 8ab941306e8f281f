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
// from in. tags, cleared first, becomes m.Tags; nil makes a new map where
// there are tags.
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

// corrDef is one correlation a publisher sends: metadata decoded and
// validated once, which its publishes repeat but for the sequence number.
// Only the publisher's reader uses it, but for base, which is immutable:
// subscribers' queues name a corrDef defined by ref by pointer
// (outQueue.correlationLocked).
type corrDef struct {
	meta correlation.Metadata // Sequence is the publish being handled's
	base []byte               // meta as the publisher encoded it, without the sequence; nil without a ref
	rec  *correlation.Recorder
	// ev is the event to record: what does not change from publish to
	// publish is set once, the rest by stageEvent.
	ev correlation.Event
	// recorded: rec's last event had this metadata, but the sequence.
	recorded bool
}

// publisherCorrelation is a connection's state for its correlated
// publishes (PROTOCOL.md §5.3.1): the correlations it named by ref, and
// the last one it sent in full without a ref.
type publisherCorrelation struct {
	refs      []*corrDef            // by ref-1; nil: not defined
	anon      *corrDef              // the last correlation sent in full without a ref...
	anonShape wire.CorrelationShape // ...and its encoding, to recognize a repeat
	corrView  wire.CorrelationView
	strip     []byte // scratch for PublishView.Uncorrelated

	// The publish routed and not yet recorded (see conn.frameDone).
	pending *corrDef
	view    wire.PublishView // aliases the frame
}

// correlationOf returns the correlation of the publish v, defining it
// first if v carries it in full (SPEC §5, PROTOCOL.md §5.3 rule 7). Its
// Sequence is v's, until the connection's next publish. Invalid metadata
// is refused, never truncated; a ref it was to define is then undefined.
// A repeat needs no decoding and no checks, so this touches as little as
// it can before the message is delivered.
func (c *conn) correlationOf(v *wire.PublishView) (*corrDef, error) {
	pc := &c.corr
	ref := v.CorrelationRef
	switch {
	case v.Correlation == nil: // by reference
		if int(ref) > len(pc.refs) || pc.refs[ref-1] == nil {
			return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION,
				"correlation ref %d is not defined on this connection", ref)
		}
		d := pc.refs[ref-1]
		d.meta.Sequence = v.CorrelationSeq
		return d, nil
	case ref == 0:
		// In full without a ref: the message is delivered as published,
		// so no subscriber's queue names the corrDef, and the next new
		// metadata may reuse it once this publish is recorded.
		if seq, ok := pc.anonShape.Match(v.Correlation); ok {
			pc.anon.meta.Sequence = seq
			return pc.anon, nil
		}
		pc.anonShape.Reset()
		if pc.anon == nil {
			pc.anon = &corrDef{rec: c.b.tracker.NewRecorder()}
		}
		if err := c.defineCorrelation(v, pc.anon); err != nil {
			return nil, err
		}
		pc.anonShape.Set(v.Correlation)
		return pc.anon, nil
	}
	for int(ref) > len(pc.refs) {
		pc.refs = append(pc.refs, nil)
	}
	pc.refs[ref-1] = nil
	d := &corrDef{rec: c.b.tracker.NewRecorder()}
	if err := c.defineCorrelation(v, d); err != nil {
		return nil, err
	}
	d.base = wire.AppendWithoutSequence(make([]byte, 0, len(v.Correlation)), v.Correlation)
	pc.refs[ref-1] = d
	return d, nil
}

// defineCorrelation decodes and validates into d the correlation v
// carries in full, with v's payload: an event too large for the history
// is refused here, before it is delivered.
func (c *conn) defineCorrelation(v *wire.PublishView, d *corrDef) error {
	if err := decodeCorrelation(v.Correlation, &c.corr.corrView, &c.strs, d.meta.Tags, &d.meta); err != nil {
		return err
	}
	d.ev = correlation.Event{
		PublisherPID:       c.peer.PID,
		PublisherUID:       c.peer.UID,
		PublisherComponent: c.component,
		Metadata:           d.meta,
	}
	d.recorded = false
	c.stageEvent(v, d)
	err := d.rec.Check(&d.ev, false)
	d.ev.Payload = nil // do not pin the read buffer
	if err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err)
	}
	return nil
}

// stageEvent sets the fields of d.ev that vary to the publish v's.
func (c *conn) stageEvent(v *wire.PublishView, d *corrDef) {
	ev := &d.ev
	ev.Topic = c.strs.get(v.Topic)
	ev.Payload = v.Payload
	ev.PublishedAt = time.Unix(0, v.PublishedAt)
	ev.ReceivedAt = time.Unix(0, c.readAt)
	ev.Metadata.Sequence = d.meta.Sequence
	ev.Final = v.Final
}

// recordCorrelation records the publish routed last. It cannot be
// refused: its metadata passed the checks when it was defined, and
// Config.Validate makes the history large enough for any message. It can
// fail only once the broker is shutting down; the message was delivered.
func (c *conn) recordCorrelation() {
	pc := &c.corr
	d := pc.pending
	c.stageEvent(&pc.view, d)
	err := d.rec.Check(&d.ev, d.recorded)
	if err == nil {
		err = d.rec.Record(&d.ev)
	}
	d.recorded = err == nil
	if err != nil {
		c.b.cfg.Logger.Warn("correlated publish delivered but not recorded", "conn", c.id, "pid", c.peer.PID, "err", err)
	}
	// Do not pin the read buffer.
	pc.pending, pc.view, d.ev.Payload = nil, wire.PublishView{}, nil
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
