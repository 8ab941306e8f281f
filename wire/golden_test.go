package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/")

// Fixed values for the golden frames, so that they are reproducible.
const (
	goldenPublishedAt = 1700000000123456789
	goldenReceivedAt  = 1700000000123500000
	goldenPID         = 4242
	goldenUID         = 1000
	goldenComponent   = "procmond"
	goldenSession     = 0x1122334455667788
)

// goldenEnvelope is the PUBLISH body of the golden frames: publisher
// fields only, as the client sends it.
func goldenEnvelope() *Envelope {
	return &Envelope{
		Topic:       "events.process.lifecycle",
		Payload:     []byte(`{"pid":4242,"event":"start"}`),
		PublishedAt: goldenPublishedAt,
		Sequence:    7,
	}
}

type sampleFrame struct {
	name string // golden file name without .bin
	t    Type
	msg  Message
}

// sampleFrames is one representative frame of every type, with fixed
// values. The golden files in testdata/ are these frames, encoded.
func sampleFrames() []sampleFrame {
	return []sampleFrame{
		{"hello", TypeHello, &Hello{ClientName: "procmond-1", Component: "procmond", SessionId: goldenSession}},
		{"hello_ok", TypeHelloOK, &HelloOK{ConnectionId: 1, BrokerVersion: "0.1.0",
			MaxMessageSize: 1 << 20, MaxFrameSize: 1<<20 + FrameOverhead, MaxSubscriptions: 10000}},
		{"publish", TypePublish, goldenEnvelope()},
		{"subscribe", TypeSubscribe, &Subscribe{RequestId: 1, SubscriptionId: 1,
			Patterns: []string{"events.process.#", "control.health.+"}}},
		{"unsubscribe", TypeUnsubscribe, &Unsubscribe{RequestId: 2, SubscriptionId: 1}},
		{"deliver", TypeDeliver, goldenDeliver()},
		{"missed", TypeMissed, &Missed{SubscriptionId: 1, Count: 3}},
		{"ok", TypeOK, &OK{RequestId: 1}},
		{"error", TypeError, &ErrorFrame{Code: ErrorCode_ERROR_CODE_RESERVED_TOPIC,
			Message: `topic "$sys.stats" is reserved for the broker`, Topic: "$sys.stats", PublishSeq: 2}},
		{"ping", TypePing, &Ping{Id: 3}},
		{"confirm", TypeConfirm, &Confirm{PublishSeq: 2}},
		{"heartbeat", TypeHeartbeat, &Heartbeat{Status: CollectorStatus_COLLECTOR_STATUS_READY, InFlight: 2, Done: 40}},
		{"reply", TypeReply, &Reply{ReplyToken: 0x0102030405060708, Payload: []byte(`{"pid":4242}`)}},
		{"response", TypeResponse, &Response{RequestId: 6, Error: &ReplyError{Code: "not_found", Message: "no such process", Category: "client"},
			ResponderPid: goldenPID, ResponderUid: goldenUID, ResponderComponent: goldenComponent}},
		{"pong", TypePong, &Pong{Id: 3}},
		{"stats_request", TypeStatsRequest, &StatsRequest{RequestId: 4}},
		{"stats_response", TypeStatsResponse, &StatsResponse{RequestId: 4, Stats: &Stats{
			StartedAt: goldenPublishedAt - 60e9, TakenAt: goldenPublishedAt, StatisticsEnabled: true,
			Published: 10, Delivered: 9, Dropped: 1, Connections: 1, MaxConnections: 100, ConnectionsTotal: 2,
			Topics:   []*TopicStats{{Topic: "events.process.lifecycle", Published: 10}},
			Patterns: []*PatternStats{{Pattern: "events.process.#", Subscribers: 1}},
			ConnectionList: []*ConnectionStats{{Id: 1, ClientName: "procmond-1", Component: "procmond",
				Uid: goldenUID, Gid: goldenUID, Pid: goldenPID, ConnectedAt: goldenPublishedAt - 30e9, Published: 10}},
			DeliveryLatency: &Latency{Count: 9, P50Ns: 20000, P90Ns: 40000, P99Ns: 90000, P999Ns: 120000, MaxNs: 125000},
		}}},
		{"query", TypeQuery, &Query{RequestId: 5, Kind: &Query_History{History: &HistoryQuery{
			Tags: map[string]string{"investigation_id": "INC-12345"}, Since: goldenPublishedAt - 60e9, Limit: 100}}}},
		{"query_result", TypeQueryResult, &QueryResult{RequestId: 5, Events: []*Envelope{goldenDeliver().Envelope},
			Timeline: []*TimelineEntry{{ReceivedAt: goldenPublishedAt, Stage: "enumeration", PublisherPid: goldenPID,
				Topic: "events.process.lifecycle", CorrelationId: "c1", Sequence: 1, Depth: 0}}}},
	}
}

// goldenDeliver is what the broker makes of the golden PUBLISH.
func goldenDeliver() *Deliver {
	e := goldenEnvelope()
	e.ReceivedAt, e.PublisherPid, e.PublisherUid, e.PublisherComponent = goldenReceivedAt, goldenPID, goldenUID, goldenComponent
	e.PublisherSession = goldenSession
	return &Deliver{SubscriptionId: 1, Envelope: e}
}

// encodeGolden encodes f the way its sender does: DELIVER with the
// broker's AppendDeliver, everything else with AppendFrame.
func encodeGolden(f sampleFrame) []byte {
	if f.t != TypeDeliver {
		return AppendFrame(nil, f.t, f.msg)
	}
	pub, err := goldenEnvelope().MarshalVT()
	if err != nil {
		panic(err)
	}
	return AppendDeliver(nil, 1, &Delivery{Head: pub, ReceivedAt: goldenReceivedAt, Publisher: AppendPublisherFields(nil, goldenPID, goldenUID, goldenComponent, goldenSession)}, nil)
}

func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeHelloOK:
		return new(HelloOK)
	case TypePublish:
		return new(Envelope)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypeDeliver:
		return new(Deliver)
	case TypeMissed:
		return new(Missed)
	case TypeOK:
		return new(OK)
	case TypeError:
		return new(ErrorFrame)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeStatsRequest:
		return new(StatsRequest)
	case TypeStatsResponse:
		return new(StatsResponse)
	case TypeQuery:
		return new(Query)
	case TypeQueryResult:
		return new(QueryResult)
	case TypeConfirm:
		return new(Confirm)
	case TypeReply:
		return new(Reply)
	case TypeResponse:
		return new(Response)
	case TypeHeartbeat:
		return new(Heartbeat)
	}
	return nil
}

// TestGoldenFrames pins the wire format: the encoding of each sample frame
// must match testdata/<name>.bin byte for byte. Run with -update to
// rewrite the files after a deliberate protocol change (and bump the
// version, PROTOCOL.md §8).
func TestGoldenFrames(t *testing.T) {
	golden := []struct {
		name string
		data []byte
	}{{"preamble", AppendPreamble(nil, Version)}}
	for _, f := range sampleFrames() {
		golden = append(golden, struct {
			name string
			data []byte
		}{f.name, encodeGolden(f)})
	}
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			path := filepath.Join("testdata", g.name+".bin")
			if *update {
				if err := os.WriteFile(path, g.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./wire/ -run TestGoldenFrames -update to create it)", err)
			}
			if !bytes.Equal(g.data, want) {
				t.Errorf("encoding of %s changed; the wire format is pinned by %s\ngot:\n%swant:\n%s",
					g.name, path, hex.Dump(g.data), hex.Dump(want))
			}
		})
	}
}

// TestGoldenFramesDecode reads every golden file back and checks it holds
// the sample message, so the files stay meaningful, not just stable.
func TestGoldenFramesDecode(t *testing.T) {
	for _, f := range sampleFrames() {
		t.Run(f.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", f.name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			r := NewReader(bufio.NewReader(bytes.NewReader(data)), 1<<16)
			typ, body, err := r.ReadFrame()
			if err != nil || typ != f.t {
				t.Fatalf("ReadFrame(%s.bin) = %v, %v; want %v, nil", f.name, typ, err, f.t)
			}
			got := newMessage(typ)
			if err := got.UnmarshalVT(body); err != nil {
				t.Fatalf("%v UnmarshalVT(%s.bin) error = %v", typ, f.name, err)
			}
			if !proto.Equal(got.(proto.Message), f.msg.(proto.Message)) {
				t.Errorf("%s.bin decodes to %v; want %v", f.name, got, f.msg)
			}
		})
	}
}

// TestGoldenCoversEveryType fails when a frame type is added without a
// golden frame for it.
func TestGoldenCoversEveryType(t *testing.T) {
	have := make(map[Type]bool)
	for _, f := range sampleFrames() {
		have[f.t] = true
	}
	for typ := TypeHello; typ <= TypeHeartbeat; typ++ {
		if !have[typ] {
			t.Errorf("no golden frame for %v", typ)
		}
		if newMessage(typ) == nil {
			t.Errorf("newMessage(%v) = nil", typ)
		}
	}
}

// TestDeliverMatchesGeneratedEncoding checks that the broker's hand-built
// DELIVER is the very encoding the generated code gives the same message,
// when the publisher encoded canonically and the identity fields are set.
func TestDeliverMatchesGeneratedEncoding(t *testing.T) {
	f := sampleFrame{"deliver", TypeDeliver, goldenDeliver()}
	got, want := encodeGolden(f), AppendFrame(nil, TypeDeliver, f.msg)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendDeliver output:\n%sAppendFrame(Deliver):\n%s", hex.Dump(got), hex.Dump(want))
	}
}
