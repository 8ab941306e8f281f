package broker

import (
	"bufio"
	"bytes"
	"testing"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/chunkbuf"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

// TestQueueCorrelationRefs: a queue defines a correlation's ref in the
// DELIVER it queues, never in one it drops, so a subscriber always has
// the definition before the first message naming the ref (PROTOCOL.md
// §5.4.1).
func TestQueueCorrelationRefs(t *testing.T) {
	def := func(stage string, seq uint64) *corrDef {
		d := &corrDef{meta: correlation.New(correlation.WithStage(stage))}
		d.base = wire.AppendCorrelationBase(nil, wireconv.MetadataToWire(&d.meta))
		d.meta.Sequence = seq
		return d
	}
	x, y := def("x", 1), def("y", 1)
	q := newOutQueue(1, 1<<20, false) // room for one DELIVER
	s := &subscription{id: 1}
	d := &wire.Delivery{Head: []byte{0x0a, 0x01, 'a'}}
	// take returns the queued DELIVERs' correlation fields: the ref, the
	// sequence, and whether the metadata came in full.
	take := func() (ref, seq uint64, full bool) {
		t.Helper()
		var into chunkbuf.Buffer
		if _, ok := q.acquire(&into, batch{}); !ok {
			t.Fatal("nothing queued")
		}
		q.release()
		var raw bytes.Buffer
		into.WriteTo(&raw)
		r := wire.NewReader(bufio.NewReader(&raw), raw.Len())
		typ, body, err := r.ReadFrame()
		if err != nil || typ != wire.TypeDeliver {
			t.Fatalf("ReadFrame = %v, %v", typ, err)
		}
		var v wire.DeliverView
		if err := wire.DecodeDeliver(body, &v); err != nil {
			t.Fatal(err)
		}
		return v.CorrelationRef, v.CorrelationSeq, v.Correlation != nil
	}

	if q.deliver(s, d, x, nil, true) != enqueuedFirst {
		t.Fatal("first delivery not queued")
	}
	if q.deliver(s, d, y, nil, true) != dropped { // y's definition is dropped with it
		t.Fatal("delivery to a full queue not dropped")
	}
	if ref, _, full := take(); ref != 1 || !full {
		t.Errorf("x's first DELIVER: ref %d, in full %v; want 1, true", ref, full)
	}
	y.meta.Sequence = 2
	q.deliver(s, d, y, nil, true)
	if ref, _, full := take(); ref != 2 || !full {
		t.Errorf("y's first DELIVER queued: ref %d, in full %v; want 2, true", ref, full)
	}
	x.meta.Sequence = 5
	q.deliver(s, d, x, nil, true)
	if ref, seq, full := take(); ref != 1 || seq != 5 || full {
		t.Errorf("x again: ref %d, sequence %d, in full %v; want 1, 5, false", ref, seq, full)
	}
}
