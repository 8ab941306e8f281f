package wire

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// Helpers that build envelope bodies field by field, including bodies the
// generated code would never produce.

func tag(num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(nil, num, typ)
}

func bytesField(num protowire.Number, v string) []byte {
	return protowire.AppendString(tag(num, protowire.BytesType), v)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tag(num, protowire.VarintType), v)
}

func fixed64Field(num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(tag(num, protowire.Fixed64Type), v)
}

func fixed32Field(num protowire.Number, v uint32) []byte {
	return protowire.AppendFixed32(tag(num, protowire.Fixed32Type), v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestScanPublishValid(t *testing.T) {
	topic := bytesField(fieldTopic, "events.process.lifecycle")
	tests := []struct {
		name       string
		body       []byte
		topic      string
		payloadLen int
	}{
		{"generated", mustMarshal(t, goldenEnvelope()), "events.process.lifecycle", len(goldenEnvelope().Payload)},
		{"topic only", topic, "events.process.lifecycle", 0},
		{"topic and payload", cat(topic, bytesField(fieldPayload, "hello")), "events.process.lifecycle", 5},
		{"empty payload field", cat(topic, bytesField(fieldPayload, "")), "events.process.lifecycle", 0},
		{"any field order", cat(fixed64Field(fieldPublishedAt, 1), bytesField(fieldPayload, "xy"), topic), "events.process.lifecycle", 2},
		{"large payload", cat(topic, bytesField(fieldPayload, strings.Repeat("p", 70000))), "events.process.lifecycle", 70000},
		// Syntax is the broker's check (topic.ValidateBytes), not ScanPublish's.
		{"empty topic", bytesField(fieldTopic, ""), "", 0},
		{"topic syntax unchecked", bytesField(fieldTopic, "Not A Topic"), "Not A Topic", 0},
		{"non-minimal tag varint", cat([]byte{0x8a, 0x00, 0x01, 'a'}), "a", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ScanPublish(tt.body)
			if err != nil {
				t.Fatalf("ScanPublish(% x) error = %v", tt.body, err)
			}
			if string(v.Topic) != tt.topic || v.PayloadLen != tt.payloadLen {
				t.Errorf("ScanPublish() = {Topic: %q, PayloadLen: %d}; want {%q, %d}", v.Topic, v.PayloadLen, tt.topic, tt.payloadLen)
			}
		})
	}
}

func TestScanPublishTopicAliasesBody(t *testing.T) {
	body := bytesField(fieldTopic, "a.b")
	v, err := ScanPublish(body)
	if err != nil {
		t.Fatal(err)
	}
	if &v.Topic[0] != &body[2] {
		t.Errorf("ScanPublish Topic does not alias the body")
	}
}

func TestScanPublishRefused(t *testing.T) {
	topic := bytesField(fieldTopic, "a.b")
	tests := []struct {
		name    string
		body    []byte
		want    error
		message string // in the error text
	}{
		{"empty body", nil, ErrInvalidTopic, "publish has no topic"},
		{"missing topic", cat(bytesField(fieldPayload, "x"), fixed64Field(fieldPublishedAt, 1)), ErrInvalidTopic, "no topic"},

		{"received_at 16", cat(topic, fixed64Field(16, 1)), ErrMalformedFrame, "broker-owned envelope field 16"},
		{"publisher_pid 17", cat(topic, varintField(17, 1)), ErrMalformedFrame, "broker-owned envelope field 17"},
		{"publisher_uid 18", cat(topic, varintField(18, 0)), ErrMalformedFrame, "broker-owned envelope field 18"},
		{"publisher_component 19", cat(topic, bytesField(19, "agent")), ErrMalformedFrame, "broker-owned envelope field 19"},
		{"reserved broker field 25", cat(topic, bytesField(25, "x")), ErrMalformedFrame, "broker-owned envelope field 25"},
		{"reserved broker field 31", cat(topic, varintField(31, 1)), ErrMalformedFrame, "broker-owned envelope field 31"},
		{"broker field before topic", cat(varintField(17, 1), topic), ErrMalformedFrame, "broker-owned envelope field 17"},
		{"broker field with wrong type", cat(topic, fixed32Field(17, 1)), ErrMalformedFrame, "broker-owned envelope field 17"},

		{"repeated topic", cat(topic, bytesField(fieldTopic, "c.d")), ErrMalformedFrame, "repeats envelope field 1"},
		{"repeated payload", cat(topic, bytesField(fieldPayload, "x"), bytesField(fieldPayload, "y")), ErrMalformedFrame, "repeats envelope field 2"},
		{"repeated published_at", cat(topic, fixed64Field(fieldPublishedAt, 1), fixed64Field(fieldPublishedAt, 2)), ErrMalformedFrame, "repeats envelope field 3"},

		{"topic as varint", varintField(fieldTopic, 5), ErrMalformedFrame, "field 1 has wire type 0, want 2"},
		{"topic as group", tag(fieldTopic, protowire.StartGroupType), ErrMalformedFrame, "field 1 has wire type 3, want 2"},
		{"payload as fixed32", cat(topic, fixed32Field(fieldPayload, 5)), ErrMalformedFrame, "field 2 has wire type 5, want 2"},
		{"published_at as varint", cat(topic, varintField(fieldPublishedAt, 5)), ErrMalformedFrame, "field 3 has wire type 0, want 1"},
		{"published_at as bytes", cat(topic, bytesField(fieldPublishedAt, "12345678")), ErrMalformedFrame, "field 3 has wire type 2, want 1"},

		{"unknown field 12", cat(topic, varintField(12, 1)), ErrMalformedFrame, "unknown envelope field 12"},
		{"correlation with the wrong wire type", cat(topic, varintField(4, 1)), ErrMalformedFrame, "field 4 has wire type 0"},
		{"unknown field 12", cat(topic, bytesField(12, "x")), ErrMalformedFrame, "unknown envelope field 12"},
		{"unknown field 15", cat(topic, varintField(15, 1)), ErrMalformedFrame, "unknown envelope field 15"},
		{"unknown field 32", cat(topic, varintField(32, 1)), ErrMalformedFrame, "unknown envelope field 32"},
		{"unknown huge field", cat(topic, varintField(protowire.MaxValidNumber, 1)), ErrMalformedFrame, "unknown envelope field"},

		{"field number 0", cat(topic, []byte{0x00, 0x00}), ErrMalformedFrame, "bad field tag"},
		{"truncated tag varint", cat(topic, []byte{0x80}), ErrMalformedFrame, "bad field tag"},
		{"overlong tag varint", cat(topic, bytes.Repeat([]byte{0xff}, 10), []byte{0x01}), ErrMalformedFrame, "bad field tag"},
		{"truncated topic length", []byte{0x0a, 0x85}, ErrMalformedFrame, "field 1"},
		{"truncated topic bytes", []byte{0x0a, 10, 'a', '.', 'b'}, ErrMalformedFrame, "field 1"},
		{"truncated payload bytes", cat(topic, []byte{0x12, 4, 'x'}), ErrMalformedFrame, "field 2"},
		{"payload length past end", cat(topic, []byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}), ErrMalformedFrame, "field 2"},
		{"truncated published_at", cat(topic, []byte{0x19, 1, 2, 3, 4}), ErrMalformedFrame, "field 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ScanPublish(tt.body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ScanPublish(% x) error = %v; want %v", tt.body, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("ScanPublish(% x) error = %q; want it to contain %q", tt.body, err, tt.message)
			}
			var we *Error
			if !errors.As(err, &we) || we.Fatal {
				t.Errorf("ScanPublish error = %#v; want a non-fatal *Error (a refused publish keeps the connection)", err)
			}
		})
	}
}

// TestScanPublishRefusalKeepsTopic checks that a refusal still reports the
// topic seen before the fault, so the broker's ERROR can name it
// (PROTOCOL.md §5.3).
func TestScanPublishRefusalKeepsTopic(t *testing.T) {
	v, err := ScanPublish(cat(bytesField(fieldTopic, "events.process.lifecycle"), varintField(17, 1)))
	if err == nil || string(v.Topic) != "events.process.lifecycle" {
		t.Errorf("ScanPublish(topic, pid) = {Topic: %q}, %v; want the topic and an error", v.Topic, err)
	}
}

func TestScanPublishAllocs(t *testing.T) {
	body := mustMarshal(t, goldenEnvelope())
	if n := testing.AllocsPerRun(100, func() { ScanPublish(body) }); n != 0 {
		t.Errorf("ScanPublish allocates %v times per call; want 0", n)
	}
}

func mustMarshal(t testing.TB, m Message) []byte {
	t.Helper()
	b := make([]byte, m.SizeVT())
	if _, err := m.MarshalToSizedBufferVT(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeDeliver reads one DELIVER frame and decodes its body.
func decodeDeliver(t *testing.T, frame []byte) *Deliver {
	t.Helper()
	r := NewReader(bufio.NewReader(bytes.NewReader(frame)), len(frame))
	typ, body, err := r.ReadFrame()
	if err != nil || typ != TypeDeliver {
		t.Fatalf("ReadFrame(AppendDeliver output) = %v, %v; want DELIVER, nil", typ, err)
	}
	var d Deliver
	if err := d.UnmarshalVT(body); err != nil {
		t.Fatalf("Deliver.UnmarshalVT error = %v", err)
	}
	if d.Envelope == nil {
		t.Fatal("Deliver has no envelope")
	}
	return &d
}

func TestAppendDeliver(t *testing.T) {
	tests := []struct {
		name       string
		subID      uint64
		env        *Envelope
		receivedAt int64
		pid        int32
		uid        uint32
		component  string
	}{
		{"typical", 1, goldenEnvelope(), goldenReceivedAt, goldenPID, goldenUID, goldenComponent},
		{"anonymous publisher", 2, goldenEnvelope(), goldenReceivedAt, 77, 0, ""},
		{"zero identity", 0, &Envelope{Topic: "a"}, 0, 0, 0, ""},
		{"large sub id", 1 << 63, &Envelope{Topic: "a.b", Payload: []byte{}}, -1, 1 << 30, 1<<32 - 1, "agent"},
		{"negative pid", 5, &Envelope{Topic: "a.b"}, 1, -1, 0, "x"},
		{"2-byte envelope length", 3, &Envelope{Topic: "a.b", Payload: make([]byte, 200)}, 1, 1, 1, "fsmond"},
		{"3-byte envelope length", 3, &Envelope{Topic: "a.b", Payload: make([]byte, 20000), PublishedAt: -5}, 1, 1, 1, "fsmond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envBytes := mustMarshal(t, tt.env)
			pub := AppendPublisherFields(nil, tt.pid, tt.uid, tt.component, 0)
			prefix := []byte{0xde, 0xad}
			frame := AppendDeliver(append([]byte(nil), prefix...), tt.subID, &Delivery{Head: envBytes, ReceivedAt: tt.receivedAt, Publisher: pub}, nil)
			if !bytes.HasPrefix(frame, prefix) {
				t.Fatalf("AppendDeliver overwrote dst's contents")
			}
			frame = frame[len(prefix):]
			if got, want := len(frame), DeliverSize(tt.subID, &Delivery{Head: envBytes, Publisher: pub}, nil); got != want {
				t.Errorf("len(AppendDeliver()) = %d; DeliverSize() = %d", got, want)
			}
			d := decodeDeliver(t, frame)
			e := d.Envelope
			if d.SubscriptionId != tt.subID {
				t.Errorf("SubscriptionId = %d; want %d", d.SubscriptionId, tt.subID)
			}
			if e.Topic != tt.env.Topic || !bytes.Equal(e.Payload, tt.env.Payload) || e.PublishedAt != tt.env.PublishedAt {
				t.Errorf("publisher fields = %q, %d bytes, %d; want %q, %d bytes, %d",
					e.Topic, len(e.Payload), e.PublishedAt, tt.env.Topic, len(tt.env.Payload), tt.env.PublishedAt)
			}
			if e.ReceivedAt != tt.receivedAt || e.PublisherPid != tt.pid || e.PublisherUid != tt.uid || e.PublisherComponent != tt.component {
				t.Errorf("broker fields = %d, pid %d, uid %d, %q; want %d, pid %d, uid %d, %q",
					e.ReceivedAt, e.PublisherPid, e.PublisherUid, e.PublisherComponent,
					tt.receivedAt, tt.pid, tt.uid, tt.component)
			}
			if len(e.unknownFields) != 0 {
				t.Errorf("envelope has unknown fields % x", e.unknownFields)
			}
		})
	}
}

// TestAppendDeliverLastWins shows why ScanPublish refuses broker-owned
// fields (PROTOCOL.md §5.3, §5.4). AppendDeliver appends the verified
// identity after the publisher's bytes, and a decoder keeps the last value
// of a field, so a forged pid, uid or received_at is overridden. But an
// anonymous publisher's empty component is not encoded at all, so a forged
// component would survive: only the refusal at PUBLISH makes the identity
// trustworthy.
func TestAppendDeliverLastWins(t *testing.T) {
	forged := cat(bytesField(fieldTopic, "a.b"),
		fixed64Field(fieldReceivedAt, 1), varintField(fieldPublisherPID, 1),
		varintField(fieldPublisherUID, 0), bytesField(fieldPublisherComp, "agent"))
	if _, err := ScanPublish(forged); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("ScanPublish(forged identity) error = %v; want ErrMalformedFrame", err)
	}

	d := decodeDeliver(t, AppendDeliver(nil, 1, &Delivery{Head: forged, ReceivedAt: 99, Publisher: AppendPublisherFields(nil, 4242, 1000, "procmond", 0)}, nil))
	if e := d.Envelope; e.ReceivedAt != 99 || e.PublisherPid != 4242 || e.PublisherUid != 1000 || e.PublisherComponent != "procmond" {
		t.Errorf("forged identity decoded as received_at %d, pid %d, uid %d, %q; want 99, 4242, 1000, \"procmond\"",
			e.ReceivedAt, e.PublisherPid, e.PublisherUid, e.PublisherComponent)
	}

	d = decodeDeliver(t, AppendDeliver(nil, 1, &Delivery{Head: forged, ReceivedAt: 99, Publisher: AppendPublisherFields(nil, 4242, 1000, "", 0)}, nil))
	if got := d.Envelope.PublisherComponent; got != "agent" {
		t.Errorf("anonymous publisher's forged component decoded as %q; this test documents that it survives (want \"agent\")", got)
	}
}

func TestDecodeDeliver(t *testing.T) {
	env := mustMarshal(t, goldenEnvelope())
	tests := []struct {
		name string
		body []byte
		want DeliverView
	}{
		{"broker output", AppendDeliver(nil, 7, &Delivery{Head: env, ReceivedAt: goldenReceivedAt, Publisher: AppendPublisherFields(nil, -1, goldenUID, goldenComponent, 0)}, nil)[HeaderSize:],
			DeliverView{SubscriptionID: 7, Topic: []byte(goldenEnvelope().Topic), Payload: goldenEnvelope().Payload,
				PublishedAt: goldenPublishedAt, ReceivedAt: goldenReceivedAt, PublisherPID: -1, PublisherUID: goldenUID,
				Component: []byte(goldenComponent)}},
		{"anonymous publisher", AppendDeliver(nil, 1, &Delivery{Head: bytesField(fieldTopic, "a.b"), ReceivedAt: 5, Publisher: AppendPublisherFields(nil, 9, 0, "", 0)}, nil)[HeaderSize:],
			DeliverView{SubscriptionID: 1, Topic: []byte("a.b"), ReceivedAt: 5, PublisherPID: 9}},
		{"fields from a newer broker skipped", cat(varintField(fieldDeliverSubID, 3), varintField(9, 1),
			bytesField(fieldDeliverEnvelope, string(cat(bytesField(fieldTopic, "a.b"), varintField(30, 1), bytesField(12, "x"))))),
			DeliverView{SubscriptionID: 3, Topic: []byte("a.b")}},
		{"last value wins", cat(varintField(fieldDeliverSubID, 3),
			bytesField(fieldDeliverEnvelope, string(cat(varintField(fieldPublisherPID, 1), varintField(fieldPublisherPID, 2))))),
			DeliverView{SubscriptionID: 3, PublisherPID: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v DeliverView
			if err := DecodeDeliver(tt.body, &v); err != nil {
				t.Fatalf("DecodeDeliver(% x) error = %v", tt.body, err)
			}
			var d Deliver
			if err := d.UnmarshalVT(tt.body); err != nil {
				t.Fatalf("Deliver.UnmarshalVT(% x) error = %v", tt.body, err)
			}
			if diff := diffDeliver(&v, &d); diff != "" {
				t.Errorf("DecodeDeliver disagrees with the generated decoder: %s", diff)
			}
			if diff := diffDeliver(&v, &Deliver{SubscriptionId: tt.want.SubscriptionID, Envelope: &Envelope{
				Topic: string(tt.want.Topic), Payload: tt.want.Payload, PublishedAt: tt.want.PublishedAt,
				ReceivedAt: tt.want.ReceivedAt, PublisherPid: tt.want.PublisherPID, PublisherUid: tt.want.PublisherUID,
				PublisherComponent: string(tt.want.Component)}}); diff != "" {
				t.Errorf("DecodeDeliver(% x) wrong: %s", tt.body, diff)
			}
		})
	}
}

func TestDecodeDeliverMalformed(t *testing.T) {
	envelope := func(parts ...[]byte) []byte { return bytesField(fieldDeliverEnvelope, string(cat(parts...))) }
	tests := []struct {
		name string
		body []byte
	}{
		{"subscription id as bytes", bytesField(fieldDeliverSubID, "x")},
		{"envelope as varint", varintField(fieldDeliverEnvelope, 1)},
		{"truncated envelope", []byte{0x12, 0x05, 0x0a}},
		{"topic as varint", envelope(varintField(fieldTopic, 1))},
		{"received_at as varint", envelope(varintField(fieldReceivedAt, 1))},
		{"pid as fixed64", envelope(fixed64Field(fieldPublisherPID, 1))},
		{"truncated field inside envelope", envelope([]byte{0x0a, 0x09, 'a'})},
		{"bad tag", []byte{0x00}},
	}
	for _, tt := range tests {
		var v DeliverView
		if err := DecodeDeliver(tt.body, &v); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s: DecodeDeliver(% x) error = %v; want ErrMalformedFrame", tt.name, tt.body, err)
		}
	}
}

func TestDecodeDeliverAllocs(t *testing.T) {
	body := AppendDeliver(nil, 1, &Delivery{Head: mustMarshal(t, goldenEnvelope()), ReceivedAt: goldenReceivedAt, Publisher: AppendPublisherFields(nil, goldenPID, goldenUID, goldenComponent, 0)}, nil)[HeaderSize:]
	var v DeliverView
	if n := testing.AllocsPerRun(100, func() { DecodeDeliver(body, &v) }); n != 0 {
		t.Errorf("DecodeDeliver allocates %v times per call; want 0", n)
	}
}

func TestAppendPublisherFields(t *testing.T) {
	tests := []struct {
		pid       int32
		uid       uint32
		component string
		want      []byte
	}{
		{0, 0, "", []byte{0x88, 0x01, 0x00, 0x90, 0x01, 0x00}},
		{4242, 1000, "procmond", cat([]byte{0x88, 0x01, 0x92, 0x21, 0x90, 0x01, 0xe8, 0x07, 0x9a, 0x01, 0x08}, []byte("procmond"))},
	}
	for _, tt := range tests {
		if got := AppendPublisherFields(nil, tt.pid, tt.uid, tt.component, 0); !bytes.Equal(got, tt.want) {
			t.Errorf("AppendPublisherFields(%d, %d, %q) = % x; want % x", tt.pid, tt.uid, tt.component, got, tt.want)
		}
	}
}

func TestAppendDeliverAllocs(t *testing.T) {
	env := mustMarshal(t, goldenEnvelope())
	pub := AppendPublisherFields(nil, goldenPID, goldenUID, goldenComponent, 0)
	dst := make([]byte, 0, 4*DeliverSize(1, &Delivery{Head: env, Publisher: pub}, nil))
	allocs := testing.AllocsPerRun(100, func() {
		dst = dst[:0]
		for range 4 {
			dst = AppendDeliver(dst, 1, &Delivery{Head: env, ReceivedAt: goldenReceivedAt, Publisher: pub}, nil)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendDeliver into a buffer with room allocates %v times; want 0", allocs)
	}
}

func BenchmarkScanPublish(b *testing.B) {
	body := mustMarshal(b, &Envelope{Topic: "events.process.lifecycle", Payload: make([]byte, 256), PublishedAt: goldenPublishedAt})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ScanPublish(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDeliver(b *testing.B) {
	env := mustMarshal(b, &Envelope{Topic: "events.process.lifecycle", Payload: make([]byte, 256), PublishedAt: goldenPublishedAt})
	body := AppendDeliver(nil, 1, &Delivery{Head: env, ReceivedAt: goldenReceivedAt, Publisher: AppendPublisherFields(nil, goldenPID, goldenUID, goldenComponent, 0)}, nil)[HeaderSize:]
	var v DeliverView
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := DecodeDeliver(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendDeliver(b *testing.B) {
	env := mustMarshal(b, &Envelope{Topic: "events.process.lifecycle", Payload: make([]byte, 256), PublishedAt: goldenPublishedAt})
	pub := AppendPublisherFields(nil, goldenPID, goldenUID, goldenComponent, 0)
	size := DeliverSize(1, &Delivery{Head: env, Publisher: pub}, nil)
	dst := make([]byte, 0, 64*size)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		if len(dst)+size > cap(dst) {
			dst = dst[:0]
		}
		dst = AppendDeliver(dst, 1, &Delivery{Head: env, ReceivedAt: goldenReceivedAt, Publisher: pub}, nil)
	}
}
