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

// decodeCorrelation decodes a publish's correlation field.
func decodeCorrelation(b []byte) (correlation.Metadata, error) {
	var c wire.Correlation
	if err := c.UnmarshalVT(b); err != nil {
		return correlation.Metadata{}, wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed correlation: %v", err)
	}
	return metadataFromWire(&c), nil
}

// track records a correlated publish in the broker's history (SPEC §5)
// and returns its metadata for routing. Invalid metadata is refused, never
// truncated.
func (b *Broker) track(c *conn, v *wire.PublishView) (*correlation.Metadata, error) {
	meta, err := decodeCorrelation(v.Correlation)
	if err != nil {
		return nil, err
	}
	err = b.tracker.Record(correlation.Event{
		Topic:              string(v.Topic),
		Payload:            v.Payload,
		PublishedAt:        time.Unix(0, v.PublishedAt),
		ReceivedAt:         time.Unix(0, c.readAt),
		PublisherPID:       c.peer.PID,
		PublisherUID:       c.peer.UID,
		PublisherComponent: c.component,
		Metadata:           meta,
		Final:              v.Final,
	})
	if err != nil {
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err)
	}
	return &meta, nil
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
