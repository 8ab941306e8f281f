package wire

import (
	"bufio"
	"bytes"
	"testing"

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
		name string
		corr *Correlation
		seq  uint64
	}{
		{"none", nil, 0},
		{"no sequence", c, 0},
		{"sequence", c, 1},
		{"large sequence", c, 1 << 62},
		{"empty correlation", &Correlation{}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &Envelope{Topic: "events.a", Payload: []byte("payload"), PublishedAt: 42, Final: true}
			var base []byte
			if tc.corr != nil {
				base = AppendCorrelationBase([]byte{}, tc.corr) // non-nil even when empty
			}
			frame := AppendPublish(nil, env, base, tc.seq)
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
			if tc.corr != nil {
				want.Correlation = withSeq(tc.corr, tc.seq)
			}
			if !proto.Equal(&got, want) {
				t.Errorf("decoded %v, want %v", &got, want)
			}
			v, err := ScanPublish(body)
			if err != nil {
				t.Fatal(err)
			}
			if (v.Correlation != nil) != (tc.corr != nil) {
				t.Errorf("ScanPublish correlation present = %v", v.Correlation != nil)
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
