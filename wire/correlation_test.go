package wire

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func sampleCorrelation() *Correlation {
	return &Correlation{CorrelationId: "c1", ParentId: "p1", RootId: "r1", Stage: "collection", SourceProcess: "procmond",
		Tags: map[string]string{"investigation_id": "INC-12345", "host": "server-01", "a": ""}, StartedAt: 1700000000123456789}
}

func withSeq(c *Correlation, seq uint64) *Correlation {
	c = proto.Clone(c).(*Correlation)
	c.Sequence = seq
	return c
}

func TestAppendCorrelationBaseCanonical(t *testing.T) {
	for _, c := range []*Correlation{{}, {CorrelationId: "x"}, sampleCorrelation()} {
		base := AppendCorrelationBase(nil, c)
		for range 20 { // map order varies between runs; the encoding must not
			if again := AppendCorrelationBase(nil, c); !bytes.Equal(again, base) {
				t.Fatalf("encodings differ:\n% x\n% x", base, again)
			}
		}
		var got Correlation
		if err := got.UnmarshalVT(base); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, withSeq(c, 0)) {
			t.Errorf("decoded %v, want %v", &got, c)
		}
	}
}

func TestAppendPublish(t *testing.T) {
	c := sampleCorrelation()
	for _, tc := range []struct {
		name        string
		corr        *Correlation
		seq, ref    uint64
		define      bool
		wantRef     uint64 // fields 6 and 7 as decoded
		wantCorrSeq uint64
	}{
		{name: "none"},
		{name: "no sequence", corr: c},
		{name: "sequence", corr: c, seq: 1},
		{name: "large sequence", corr: c, seq: 1 << 62},
		{name: "empty correlation", corr: &Correlation{}, seq: 7},
		{name: "defining a ref", corr: c, seq: 3, ref: 5, define: true, wantRef: 5},
		{name: "by ref", corr: c, seq: 4, ref: 5, wantRef: 5, wantCorrSeq: 4},
		{name: "by ref without sequence", corr: c, ref: MaxCorrelationRef, wantRef: MaxCorrelationRef},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &Envelope{Topic: "events.a", Payload: []byte("payload"), PublishedAt: 42, Final: true}
			var corr *CorrelationFields
			if tc.corr != nil {
				// Base is non-nil even when empty.
				corr = &CorrelationFields{Base: AppendCorrelationBase([]byte{}, tc.corr), Seq: tc.seq, Ref: tc.ref, Define: tc.define}
			}
			frame := AppendPublish(nil, env, corr)
			if got, want := len(frame), PublishSize(env.SizeVT(), corr); got != want {
				t.Errorf("len(AppendPublish) = %d; PublishSize = %d", got, want)
			}
			r := NewReader(bufio.NewReader(bytes.NewReader(frame)), len(frame))
			typ, body, err := r.ReadFrame()
			if err != nil || typ != TypePublish {
				t.Fatalf("ReadFrame: %v %v", typ, err)
			}
			var got Envelope
			if err := got.UnmarshalVT(body); err != nil {
				t.Fatal(err)
			}
			want := proto.Clone(env).(*Envelope)
			inFull := tc.corr != nil && (tc.ref == 0 || tc.define)
			if inFull {
				want.Correlation = withSeq(tc.corr, tc.seq)
			}
			want.CorrelationRef, want.CorrelationSequence = tc.wantRef, tc.wantCorrSeq
			if !proto.Equal(&got, want) {
				t.Errorf("decoded %v, want %v", &got, want)
			}
			v, err := ScanPublish(body)
			if err != nil {
				t.Fatal(err)
			}
			if (v.Correlation != nil) != inFull || v.CorrelationRef != tc.wantRef || v.CorrelationSeq != tc.wantCorrSeq {
				t.Errorf("ScanPublish: correlation present %v, ref %d, seq %d", v.Correlation != nil, v.CorrelationRef, v.CorrelationSeq)
			}
			head, tail, _ := v.Uncorrelated(body, nil)
			plain := proto.Clone(env).(*Envelope)
			if wantPlain, _ := plain.MarshalVT(); !bytes.Equal(append(head[:len(head):len(head)], tail...), wantPlain) {
				t.Errorf("Uncorrelated = % x + % x; want % x", head, tail, wantPlain)
			}
			// Resent on a new connection, defining ref 9 there: the same
			// message, whatever the first frame named.
			var again *CorrelationFields
			if corr != nil {
				again = &CorrelationFields{Base: corr.Base, Seq: tc.seq, Ref: 9, Define: true}
			}
			frame2 := AppendRepublish(nil, body, &v, again)
			var got2 Envelope
			if err := got2.UnmarshalVT(frame2[HeaderSize:]); err != nil {
				t.Fatal(err)
			}
			want2 := proto.Clone(env).(*Envelope)
			if tc.corr != nil {
				want2.Correlation, want2.CorrelationRef = withSeq(tc.corr, tc.seq), 9
			}
			if !proto.Equal(&got2, want2) {
				t.Errorf("AppendRepublish decoded %v, want %v", &got2, want2)
			}
		})
	}
}

// TestUncorrelatedInterleaved: correlation fields between others are cut
// out one by one, through the scratch buffer.
func TestUncorrelatedInterleaved(t *testing.T) {
	var body []byte
	body = protowire.AppendTag(body, fieldCorrRef, protowire.VarintType)
	body = protowire.AppendVarint(body, 3)
	body = append(body, bytesField(fieldTopic, "a.b")...)
	body = protowire.AppendTag(body, fieldCorrSeq, protowire.VarintType)
	body = protowire.AppendVarint(body, 9)
	body = append(body, bytesField(fieldPayload, "p")...)
	v, err := ScanPublish(body)
	if err != nil {
		t.Fatal(err)
	}
	head, tail, scratch := v.Uncorrelated(body, make([]byte, 0, 64))
	if want := append(bytesField(fieldTopic, "a.b"), bytesField(fieldPayload, "p")...); !bytes.Equal(head, want) || tail != nil {
		t.Errorf("Uncorrelated = % x + % x; want % x", head, tail, want)
	}
	if &scratch[0] != &head[0] {
		t.Error("Uncorrelated did not build in the scratch buffer")
	}
}

// TestScanPublishCorrelationRef: the rules of PROTOCOL.md §5.3.1 that
// ScanPublish enforces.
func TestScanPublishCorrelationRef(t *testing.T) {
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	corr := protowire.AppendBytes(protowire.AppendTag(nil, fieldCorrelation, protowire.BytesType), bytesField(fieldCorrID, "c"))
	topic := bytesField(fieldTopic, "a.b")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		body []byte
		code ErrorCode
		msg  string
	}{
		{"sequence without ref", cat(topic, varint(fieldCorrSeq, 1)), ErrorCode_ERROR_CODE_MALFORMED_FRAME, "without correlation_ref"},
		{"sequence with correlation", cat(topic, corr, varint(fieldCorrRef, 1), varint(fieldCorrSeq, 1)), ErrorCode_ERROR_CODE_MALFORMED_FRAME, "with correlation"},
		{"ref 0", cat(topic, varint(fieldCorrRef, 0)), ErrorCode_ERROR_CODE_INVALID_CORRELATION, "ref 0 out of range 1-1024"},
		{"ref over the limit", cat(topic, varint(fieldCorrRef, MaxCorrelationRef+1)), ErrorCode_ERROR_CODE_INVALID_CORRELATION, "ref 1025 out of range"},
		{"ref twice", cat(topic, varint(fieldCorrRef, 1), varint(fieldCorrRef, 2)), ErrorCode_ERROR_CODE_MALFORMED_FRAME, "repeats envelope field 6"},
		{"ref as bytes", cat(topic, bytesField(fieldCorrRef, "x")), ErrorCode_ERROR_CODE_MALFORMED_FRAME, "field 6 has wire type 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ScanPublish(tc.body)
			var we *Error
			if !errors.As(err, &we) || we.Code != tc.code || !strings.Contains(we.Message, tc.msg) {
				t.Errorf("ScanPublish = %v; want code %v mentioning %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestCorrelationShape(t *testing.T) {
	c := sampleCorrelation()
	enc := func(c *Correlation, seq uint64) []byte {
		return append(AppendCorrelationBase(nil, c), appendSeq(seq)...)
	}
	changed := func(f func(c *Correlation)) *Correlation {
		c := proto.Clone(c).(*Correlation)
		f(c)
		return c
	}
	var s CorrelationShape
	if _, ok := s.Match(enc(c, 1)); ok {
		t.Fatal("the zero shape matched")
	}
	s.Set(enc(c, 1))
	for _, tc := range []struct {
		name    string
		b       []byte
		seq     uint64
		matches bool
	}{
		{"same", enc(c, 1), 1, true},
		{"next sequence", enc(c, 2), 2, true},
		{"huge sequence", enc(c, 1<<63), 1 << 63, true},
		{"no sequence", enc(c, 0), 0, false},
		{"sequence first", append(appendSeq(2), AppendCorrelationBase(nil, c)...), 0, false},
		{"other id", enc(changed(func(c *Correlation) { c.CorrelationId = "c2" }), 2), 0, false},
		{"other stage", enc(changed(func(c *Correlation) { c.Stage = "analysis" }), 2), 0, false},
		{"other tag value", enc(changed(func(c *Correlation) { c.Tags["host"] = "server-02" }), 2), 0, false},
		{"extra tag", enc(changed(func(c *Correlation) { c.Tags["x"] = "y" }), 2), 0, false},
		{"other start", enc(changed(func(c *Correlation) { c.StartedAt++ }), 2), 0, false},
		{"trailing field", append(enc(c, 2), appendSeq(3)...), 0, false},
		{"truncated", enc(c, 2)[:len(enc(c, 2))-1], 0, false},
	} {
		seq, ok := s.Match(tc.b)
		if ok != tc.matches || ok && seq != tc.seq {
			t.Errorf("%s: Match = %d, %v; want %d, %v", tc.name, seq, ok, tc.seq, tc.matches)
		}
	}

	s.Set(enc(c, 0))
	if seq, ok := s.Match(enc(c, 0)); !ok || seq != 0 {
		t.Errorf("without a sequence: Match = %d, %v", seq, ok)
	}
	if _, ok := s.Match(enc(c, 5)); ok {
		t.Error("a shape without a sequence matched one with")
	}
	s.Set(append(enc(c, 1), appendSeq(2)...))
	if _, ok := s.Match(append(enc(c, 1), appendSeq(2)...)); ok {
		t.Error("a shape with two sequence fields was remembered")
	}
	s.Set(enc(c, 1))
	s.Reset()
	if _, ok := s.Match(enc(c, 1)); ok {
		t.Error("Reset shape matched")
	}
}

func appendSeq(seq uint64) []byte {
	if seq == 0 {
		return nil
	}
	return append([]byte{seqTag}, protoVarint(seq)...)
}

func protoVarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// FuzzCorrelationShape checks that a match means what it says: the two
// encodings decode to the same Correlation but for the sequence number,
// which Match returns.
func FuzzCorrelationShape(f *testing.F) {
	c := sampleCorrelation()
	a := append(AppendCorrelationBase(nil, c), appendSeq(1)...)
	f.Add(a, append(AppendCorrelationBase(nil, c), appendSeq(99)...))
	f.Add(a, a)
	f.Add(AppendCorrelationBase(nil, c), AppendCorrelationBase(nil, c))
	f.Add(a, append(appendSeq(3), AppendCorrelationBase(nil, c)...))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ca, cb Correlation
		if ca.UnmarshalVT(a) != nil {
			return
		}
		var s CorrelationShape
		s.Set(a)
		seq, ok := s.Match(b)
		if !ok {
			return
		}
		if err := cb.UnmarshalVT(b); err != nil {
			t.Fatalf("matched an undecodable encoding: %v", err)
		}
		if cb.Sequence != seq {
			t.Fatalf("Match returned sequence %d, decoded %d", seq, cb.Sequence)
		}
		ca.Sequence = seq
		if !proto.Equal(&ca, &cb) {
			t.Fatalf("matched encodings differ:\n%v\n%v", &ca, &cb)
		}
	})
}

// TestDeliverCorrelation: a DELIVER defines a correlation ref with the
// metadata in full, then names it by ref and sequence (PROTOCOL.md §5.4.1).
func TestDeliverCorrelation(t *testing.T) {
	c := sampleCorrelation()
	d := &Delivery{Head: bytesField(fieldTopic, "a.b"), ReceivedAt: 5, Publisher: AppendPublisherFields(nil, 9, 0, "", 0)}
	for _, tc := range []struct {
		name     string
		corr     *CorrelationFields
		want     *Correlation
		ref, seq uint64
	}{
		{"definition", &CorrelationFields{Base: AppendCorrelationBase(nil, c), Seq: 4, Ref: 7, Define: true}, withSeq(c, 4), 7, 0},
		{"by ref", &CorrelationFields{Seq: 5, Ref: 7}, nil, 7, 5},
		{"by ref, sequence 0", &CorrelationFields{Ref: 7}, nil, 7, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := AppendDeliver(nil, 2, d, tc.corr)
			if len(frame) != DeliverSize(2, d, tc.corr) {
				t.Errorf("len(AppendDeliver) = %d; DeliverSize = %d", len(frame), DeliverSize(2, d, tc.corr))
			}
			e := decodeDeliver(t, frame).Envelope
			if !proto.Equal(e.Correlation, tc.want) || e.DeliveryCorrelationRef != tc.ref || e.DeliveryCorrelationSequence != tc.seq {
				t.Errorf("decoded correlation %v, ref %d, seq %d; want %v, %d, %d", e.Correlation, e.DeliveryCorrelationRef, e.DeliveryCorrelationSequence, tc.want, tc.ref, tc.seq)
			}
			var v DeliverView
			if err := DecodeDeliver(frame[HeaderSize:], &v); err != nil {
				t.Fatal(err)
			}
			if v.CorrelationRef != tc.ref || v.CorrelationSeq != tc.seq || (v.Correlation != nil) != (tc.want != nil) {
				t.Errorf("DecodeDeliver: ref %d, seq %d, correlation present %v", v.CorrelationRef, v.CorrelationSeq, v.Correlation != nil)
			}
		})
	}
}

func TestAppendWithoutSequence(t *testing.T) {
	c := sampleCorrelation()
	base := AppendCorrelationBase(nil, c)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"sequence last", append(append([]byte(nil), base...), appendSeq(7)...)},
		{"sequence first", append(appendSeq(7), base...)},
		{"no sequence", base},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendWithoutSequence([]byte{0xff}, tc.b)
			if got[0] != 0xff {
				t.Fatal("dst's contents overwritten")
			}
			var m Correlation
			if err := m.UnmarshalVT(got[1:]); err != nil {
				t.Fatal(err)
			}
			want := c
			if tc.b == nil {
				want = &Correlation{}
			}
			if !proto.Equal(&m, want) {
				t.Errorf("decoded %v; want %v (no sequence)", &m, want)
			}
		})
	}
}
