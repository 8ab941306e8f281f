package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

// goldenSeeds returns the golden files' contents: whole frames (and the
// preamble). Every fuzz target is seeded from them.
func goldenSeeds(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no golden files in testdata (%v)", err)
	}
	var seeds [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// goldenBodies returns the type and body of every golden frame.
func goldenBodies(f *testing.F) (types []Type, bodies [][]byte) {
	f.Helper()
	for _, seed := range goldenSeeds(f) {
		if bytes.HasPrefix(seed, []byte(Magic)) {
			continue
		}
		r := NewReader(bufio.NewReader(bytes.NewReader(seed)), len(seed))
		typ, body, err := r.ReadFrame()
		if err != nil {
			f.Fatalf("golden frame % x: %v", seed, err)
		}
		types = append(types, typ)
		bodies = append(bodies, bytes.Clone(body))
	}
	return types, bodies
}

// FuzzReadFrame reads arbitrary bytes as a frame stream with a small frame
// limit and a minimal bufio buffer, so both the buffered and the large
// path run. It checks that ReadFrame never panics, never returns or keeps
// more than the limit, fails only with the documented errors, honours
// HasFrame, and returns exactly the bytes of the stream.
func FuzzReadFrame(f *testing.F) {
	const maxFrame = 256
	seeds := goldenSeeds(f)
	var all []byte
	for _, s := range seeds {
		f.Add(s)
		if !bytes.HasPrefix(s, []byte(Magic)) {
			all = append(all, s...)
		}
	}
	f.Add(all)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 3})
	f.Add([]byte{0, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		src := &countingReader{r: bytes.NewReader(in)}
		r := NewReader(bufio.NewReaderSize(src, minBufio), maxFrame)
		var rebuilt []byte
		for {
			ready := r.HasFrame()
			reads := src.reads
			typ, body, err := r.ReadFrame()
			if err != nil {
				checkReadError(t, err, in, rebuilt)
				break
			}
			if ready && src.reads != reads {
				t.Fatalf("HasFrame() = true but ReadFrame read from the source")
			}
			if len(body)+1 > maxFrame {
				t.Fatalf("ReadFrame returned a %d-byte body; limit %d", len(body), maxFrame)
			}
			rebuilt = append(AppendHeader(rebuilt, typ, len(body)), body...)
			if !bytes.HasPrefix(in, rebuilt) {
				t.Fatalf("frames read so far re-encode to % x; not a prefix of the input % x", rebuilt, in)
			}
		}
		if cap(r.large) > maxFrame {
			t.Fatalf("Reader keeps a %d-byte buffer; limit %d", cap(r.large), maxFrame)
		}
	})
}

func checkReadError(t *testing.T, err error, in, consumed []byte) {
	t.Helper()
	switch {
	case err == io.EOF:
		if len(consumed) != len(in) {
			t.Fatalf("io.EOF after %d of %d bytes", len(consumed), len(in))
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrMalformedFrame), errors.Is(err, ErrFrameTooLarge):
		if len(consumed) == len(in) {
			t.Fatalf("ReadFrame error %v at the end of the input; want io.EOF", err)
		}
	default:
		t.Fatalf("ReadFrame error %v; want io.EOF, io.ErrUnexpectedEOF, ErrMalformedFrame or ErrFrameTooLarge", err)
	}
}

// FuzzScanPublish checks ScanPublish against the generated decoder: what
// ScanPublish accepts, Envelope.UnmarshalVT accepts and reads the same
// way, with no broker-owned field set; and the DELIVER the broker would
// build from it decodes to the publisher's fields plus the broker's.
func FuzzScanPublish(f *testing.F) {
	_, bodies := goldenBodies(f)
	for _, b := range bodies {
		f.Add(b)
	}
	env := &Envelope{Topic: "a.b", Payload: []byte("p"), Final: true}
	base := AppendCorrelationBase(nil, sampleCorrelation())
	for _, c := range []CorrelationFields{{Base: base, Seq: 1, Ref: 2, Define: true}, {Seq: 3, Ref: 2}, {Ref: MaxCorrelationRef}} {
		f.Add(AppendPublish(nil, env, &c)[HeaderSize:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := ScanPublish(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrInvalidTopic) && !errors.Is(err, ErrInvalidCorrelation) {
				t.Fatalf("ScanPublish(% x) error %v; want ErrMalformedFrame, ErrInvalidTopic or ErrInvalidCorrelation", body, err)
			}
			return
		}
		if v.Correlation != nil {
			// ScanPublish does not look inside the correlation; the broker
			// decodes it next and refuses the publish if it is malformed.
			var c Correlation
			if c.UnmarshalVT(v.Correlation) != nil {
				return
			}
		}
		var e Envelope
		if err := e.UnmarshalVT(body); err != nil {
			t.Fatalf("ScanPublish accepted % x but Envelope.UnmarshalVT says %v", body, err)
		}
		if e.Topic != string(v.Topic) || len(e.Payload) != v.PayloadLen {
			t.Fatalf("ScanPublish(% x) = {%q, %d}; UnmarshalVT = {%q, %d}", body, v.Topic, v.PayloadLen, e.Topic, len(e.Payload))
		}
		if e.ReceivedAt != 0 || e.PublisherPid != 0 || e.PublisherUid != 0 || e.PublisherComponent != "" ||
			e.DeliveryCorrelationRef != 0 || e.DeliveryCorrelationSequence != 0 || len(e.unknownFields) != 0 {
			t.Fatalf("ScanPublish accepted % x, which sets broker-owned or unknown fields: %v", body, &e)
		}
		if e.CorrelationRef != v.CorrelationRef || e.CorrelationSequence != v.CorrelationSeq {
			t.Fatalf("ScanPublish(% x) ref %d seq %d; UnmarshalVT ref %d seq %d", body, v.CorrelationRef, v.CorrelationSeq, e.CorrelationRef, e.CorrelationSequence)
		}
		head, tail, _ := v.Uncorrelated(body, nil)
		plain := append(append([]byte(nil), head...), tail...)
		var p Envelope
		if err := p.UnmarshalVT(plain); err != nil {
			t.Fatalf("Uncorrelated(% x) = % x, which does not decode: %v", body, plain, err)
		}
		e.Correlation, e.CorrelationRef, e.CorrelationSequence = nil, 0, 0
		if !proto.Equal(&p, &e) {
			t.Fatalf("Uncorrelated(% x) decodes to %v; want %v", body, &p, &e)
		}

		pub := AppendPublisherFields(nil, -7, 1000, "", 0)
		dl := &Delivery{Head: head, Tail: tail, ReceivedAt: 5, Publisher: pub}
		var corr *CorrelationFields
		if v.HasCorrelation() {
			corr = &CorrelationFields{Ref: 3, Seq: v.CorrelationSeq}
		}
		frame := AppendDeliver(nil, 42, dl, corr)
		if len(frame) != DeliverSize(42, dl, corr) {
			t.Fatalf("len(AppendDeliver) = %d; DeliverSize = %d", len(frame), DeliverSize(42, dl, corr))
		}
		var d Deliver
		if err := d.UnmarshalVT(frame[HeaderSize:]); err != nil {
			t.Fatalf("Deliver.UnmarshalVT(AppendDeliver(% x)) error = %v", body, err)
		}
		got := d.Envelope
		if d.SubscriptionId != 42 || got == nil || got.Topic != e.Topic || !bytes.Equal(got.Payload, e.Payload) ||
			got.PublishedAt != e.PublishedAt || got.ReceivedAt != 5 || got.PublisherPid != -7 || got.PublisherUid != 1000 || got.PublisherComponent != "" {
			t.Fatalf("DELIVER of % x decodes to %v; want subscription 42 and %v with the broker's fields", body, &d, &e)
		}
		if corr != nil && (got.DeliveryCorrelationRef != 3 || got.DeliveryCorrelationSequence != corr.Seq || got.Correlation != nil) {
			t.Fatalf("DELIVER of % x by ref 3 decodes to %v", body, &d)
		}
		var view DeliverView
		if err := DecodeDeliver(frame[HeaderSize:], &view); err != nil {
			t.Fatalf("DecodeDeliver(AppendDeliver(% x)) error = %v", body, err)
		}
		if diff := diffDeliver(&view, &d); diff != "" {
			t.Fatalf("DELIVER of % x: DecodeDeliver and Deliver.UnmarshalVT disagree: %s", body, diff)
		}
	})
}

// FuzzDecodeDeliver checks the client's allocation-free DecodeDeliver
// against the generated Deliver.UnmarshalVT: it never panics, and when both
// accept a body they agree on every field. (They do not accept the same
// set: DecodeDeliver, parsing with protowire, refuses some non-canonical
// encodings the generated code tolerates, such as a 10-byte varint whose
// last byte exceeds 1 or a group closed with another field's number; and
// it accepts an envelope split across two fields that is malformed in
// either half. A broker never sends those: its envelope bytes passed
// ScanPublish, which parses with protowire too.)
func FuzzDecodeDeliver(f *testing.F) {
	_, bodies := goldenBodies(f)
	for _, b := range bodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v DeliverView
		errView := DecodeDeliver(body, &v)
		if errView != nil && !errors.Is(errView, ErrMalformedFrame) {
			t.Fatalf("DecodeDeliver(% x) error %v; want ErrMalformedFrame", body, errView)
		}
		var d Deliver
		if err := d.UnmarshalVT(body); err != nil || errView != nil {
			return
		}
		if diff := diffDeliver(&v, &d); diff != "" {
			t.Fatalf("DecodeDeliver(% x) and Deliver.UnmarshalVT disagree: %s", body, diff)
		}
	})
}

// diffDeliver describes how v differs from d, or returns "".
func diffDeliver(v *DeliverView, d *Deliver) string {
	e := d.Envelope
	if e == nil {
		e = new(Envelope)
	}
	const format = "sub %d topic %q payload %x published %d received %d pid %d uid %d component %q correlation %v ref %d seq %d final %v"
	got := fmt.Sprintf(format, v.SubscriptionID, v.Topic, v.Payload, v.PublishedAt, v.ReceivedAt, v.PublisherPID,
		v.PublisherUID, v.Component, v.Correlation != nil, v.CorrelationRef, v.CorrelationSeq, v.Final)
	want := fmt.Sprintf(format, d.SubscriptionId, e.Topic, e.Payload, e.PublishedAt, e.ReceivedAt, e.PublisherPid,
		e.PublisherUid, e.PublisherComponent, e.Correlation != nil, e.DeliveryCorrelationRef, e.DeliveryCorrelationSequence, e.Final)
	if got == want {
		return ""
	}
	return "DecodeDeliver: " + got + "; UnmarshalVT: " + want
}

// allMessages returns a fresh value of every generated message type.
func allMessages() []Message {
	return []Message{
		new(Hello), new(HelloOK), new(Envelope), new(Subscribe), new(Unsubscribe), new(Deliver),
		new(Missed), new(OK), new(ErrorFrame), new(Ping), new(Pong), new(StatsRequest),
		new(StatsResponse), new(Stats), new(TopicStats), new(PatternStats), new(ConnectionStats), new(Latency),
	}
}

// FuzzDecodeBodies feeds arbitrary bytes to every generated message's
// UnmarshalVT. It must never panic, and what it accepts must survive a
// marshal and a second decode unchanged.
func FuzzDecodeBodies(f *testing.F) {
	_, bodies := goldenBodies(f)
	for _, b := range bodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, m := range allMessages() {
			if err := m.UnmarshalVT(body); err != nil {
				continue
			}
			out := make([]byte, m.SizeVT())
			n, err := m.MarshalToSizedBufferVT(out)
			if err != nil || n != len(out) {
				t.Fatalf("%T: marshal after decoding % x = %d bytes, %v; want %d, nil", m, body, n, err, len(out))
			}
			again := newLike(m)
			if err := again.UnmarshalVT(out); err != nil {
				t.Fatalf("%T: decoding its own encoding % x: %v", m, out, err)
			}
			if !proto.Equal(m.(proto.Message), again.(proto.Message)) {
				t.Fatalf("%T: % x decodes to %v, re-encodes to % x, decodes to %v", m, body, m, out, again)
			}
		}
	})
}

// newLike returns an empty message of m's type.
func newLike(m Message) Message {
	return m.(proto.Message).ProtoReflect().Type().New().Interface().(Message)
}

// FuzzDecodeCorrelation: whatever the broker's DecodeCorrelation accepts,
// the generated decoder (which any client may use) accepts too, with the
// same values; otherwise one publish could break its subscribers.
func FuzzDecodeCorrelation(f *testing.F) {
	f.Add(mustMarshal(f, &Correlation{CorrelationId: "c", ParentId: "p", RootId: "r", Sequence: 7, Stage: "s",
		SourceProcess: "src", Tags: map[string]string{"k": "v", "k2": ""}, StartedAt: 5}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v CorrelationView
		if DecodeCorrelation(b, &v) != nil {
			return
		}
		var c Correlation
		if err := c.UnmarshalVT(b); err != nil {
			t.Fatalf("DecodeCorrelation accepted % x but Correlation.UnmarshalVT says %v", b, err)
		}
		tags := map[string]string{}
		for _, kv := range v.Tags {
			tags[string(kv[0])] = string(kv[1])
		}
		if string(v.CorrelationID) != c.CorrelationId || string(v.ParentID) != c.ParentId || string(v.RootID) != c.RootId ||
			string(v.Stage) != c.Stage || string(v.SourceProcess) != c.SourceProcess || v.Sequence != c.Sequence ||
			v.StartedAt != c.StartedAt || len(tags) != len(c.Tags) {
			t.Fatalf("DecodeCorrelation(% x) = %+v; UnmarshalVT = %v", b, v, &c)
		}
		for k, val := range c.Tags {
			if tags[k] != val {
				t.Fatalf("DecodeCorrelation(% x) tag %q = %q; UnmarshalVT %q", b, k, tags[k], val)
			}
		}
	})
}

func TestDecodeCorrelationAllocs(t *testing.T) {
	b := mustMarshal(t, &Correlation{CorrelationId: "c", RootId: "r", Stage: "s", Tags: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}})
	var v CorrelationView
	DecodeCorrelation(b, &v)
	if n := testing.AllocsPerRun(100, func() { DecodeCorrelation(b, &v) }); n != 0 {
		t.Errorf("DecodeCorrelation allocates %.1f times with a warm view; want 0", n)
	}
}

// FuzzHandshake feeds both ends' openings arbitrary bytes: neither may
// panic, and an opening either side accepts re-encodes to one it reads
// back equal.
func FuzzHandshake(f *testing.F) {
	f.Add(AppendOpening(nil, TypeHello, &Hello{ClientName: "procmond", Component: "procmond", Token: []byte("t")}))
	f.Add(AppendOpening(nil, TypeHelloOK, &HelloOK{ConnectionId: 3, BrokerVersion: "0.1.0", MaxMessageSize: 1 << 20}))
	f.Add(AppendRefusal(nil, Errorf(ErrorCode_ERROR_CODE_FORBIDDEN, "no")))
	for _, g := range goldenSeeds(f) {
		f.Add(append(AppendPreamble(nil, Version), g...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ReadHello(reader(data)); err == nil {
			again, err := ReadHello(reader(AppendOpening(nil, TypeHello, h)))
			if err != nil || !proto.Equal(again, h) {
				t.Fatalf("HELLO %v re-read as %v, %v", h, again, err)
			}
		}
		if ok, err := ReadHelloOK(reader(data)); err == nil {
			again, err := ReadHelloOK(reader(AppendOpening(nil, TypeHelloOK, ok)))
			if err != nil || !proto.Equal(again, ok) {
				t.Fatalf("HELLO_OK %v re-read as %v, %v", ok, again, err)
			}
		}
	})
}
