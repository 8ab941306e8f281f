package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"
)

// minBufio is the smallest buffer bufio.NewReaderSize gives; frames with
// bodies longer than it take the Reader's large path.
const minBufio = 16

func TestPreambleRoundTrip(t *testing.T) {
	for _, version := range []uint8{0, Version, 2, 255} {
		p := AppendPreamble(nil, version)
		if len(p) != PreambleSize {
			t.Errorf("len(AppendPreamble(nil, %d)) = %d; want %d", version, len(p), PreambleSize)
		}
		if want := Magic + string([]byte{version, 0}); string(p) != want {
			t.Errorf("AppendPreamble(nil, %d) = %q; want %q", version, p, want)
		}
		got, err := ReadPreamble(bytes.NewReader(p))
		if err != nil || got != version {
			t.Errorf("ReadPreamble(%q) = %d, %v; want %d, nil", p, got, err, version)
		}
	}
	if got := AppendPreamble([]byte("x"), Version); string(got) != "xEVTBUS\x01\x00" {
		t.Errorf("AppendPreamble([]byte(\"x\"), 1) = %q; want it appended after x", got)
	}
}

func TestPreambleReservedByteIgnored(t *testing.T) {
	// PROTOCOL.md §2: version 1 receivers ignore the reserved byte.
	got, err := ReadPreamble(strings.NewReader("EVTBUS\x01\xff"))
	if err != nil || got != 1 {
		t.Errorf("ReadPreamble(reserved 0xff) = %d, %v; want 1, nil", got, err)
	}
}

func TestPreambleBadMagic(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\r\n",
		"evtbus\x01\x00",
		"EVTBU\x00\x01\x00",
		"\x00\x00\x00\x05\x01abc",
		"XEVTBUS\x01",
	} {
		t.Run("", func(t *testing.T) {
			_, err := ReadPreamble(strings.NewReader(in))
			if !errors.Is(err, ErrBadMagic) {
				t.Fatalf("ReadPreamble(%q) error = %v; want ErrBadMagic", in, err)
			}
			if !strings.Contains(err.Error(), `"EVTBUS"`) {
				t.Errorf("ReadPreamble(%q) error %q does not name the expected magic", in, err)
			}
		})
	}
}

func TestPreambleShortRead(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", io.EOF},
		{"E", io.ErrUnexpectedEOF},
		{"EVTBUS", io.ErrUnexpectedEOF},
		{"EVTBUS\x01", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		_, err := ReadPreamble(strings.NewReader(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("ReadPreamble(%q) error = %v; want %v", tt.in, err, tt.want)
		}
		if errors.Is(err, ErrBadMagic) {
			t.Errorf("ReadPreamble(%q) error = %v; a short read is not a bad magic", tt.in, err)
		}
	}
}

// TestReaderHandshakeStream reads what a broker sends at hello: preamble,
// then a frame, from one buffered stream.
func TestReaderHandshakeStream(t *testing.T) {
	ok := &HelloOK{ConnectionId: 9, BrokerVersion: "0.1.0", MaxMessageSize: 1 << 20}
	in := AppendFrame(AppendPreamble(nil, Version), TypeHelloOK, ok)
	r := NewReader(bufio.NewReader(iotest.OneByteReader(bytes.NewReader(in))), 1<<10)
	v, err := r.ReadPreamble()
	if err != nil || v != Version {
		t.Fatalf("ReadPreamble() = %d, %v; want %d, nil", v, err, Version)
	}
	typ, body, err := r.ReadFrame()
	if err != nil || typ != TypeHelloOK {
		t.Fatalf("ReadFrame() = %v, %v; want HELLO_OK, nil", typ, err)
	}
	var got HelloOK
	if err := got.UnmarshalVT(body); err != nil || !proto.Equal(&got, ok) {
		t.Errorf("HELLO_OK body = %v, %v; want %v", &got, err, ok)
	}
}

func TestAppendHeader(t *testing.T) {
	tests := []struct {
		t       Type
		bodyLen int
		want    []byte
	}{
		{TypePing, 0, []byte{0, 0, 0, 1, 10}},
		{TypePublish, 2, []byte{0, 0, 0, 3, 3}},
		{TypeDeliver, 0x1234, []byte{0, 0, 0x12, 0x35, 6}},
		{TypeStatsResponse, 1<<24 - 1, []byte{1, 0, 0, 0, 13}},
	}
	for _, tt := range tests {
		if got := AppendHeader(nil, tt.t, tt.bodyLen); !bytes.Equal(got, tt.want) {
			t.Errorf("AppendHeader(nil, %v, %d) = % x; want % x", tt.t, tt.bodyLen, got, tt.want)
		}
	}
}

func TestTypeString(t *testing.T) {
	tests := []struct {
		t    Type
		want string
	}{
		{TypeHello, "HELLO"}, {TypeHelloOK, "HELLO_OK"}, {TypePublish, "PUBLISH"},
		{TypeSubscribe, "SUBSCRIBE"}, {TypeUnsubscribe, "UNSUBSCRIBE"}, {TypeDeliver, "DELIVER"},
		{TypeMissed, "MISSED"}, {TypeOK, "OK"}, {TypeError, "ERROR"}, {TypePing, "PING"},
		{TypePong, "PONG"}, {TypeStatsRequest, "STATS_REQUEST"}, {TypeStatsResponse, "STATS_RESPONSE"},
		{TypeQuery, "QUERY"}, {TypeQueryResult, "QUERY_RESULT"}, {TypeConfirm, "CONFIRM"},
		{TypeReply, "REPLY"}, {TypeResponse, "RESPONSE"}, {TypeHeartbeat, "HEARTBEAT"},
		{0, "TYPE(0)"}, {20, "TYPE(20)"}, {255, "TYPE(255)"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("Type(%d).String() = %q; want %q", uint8(tt.t), got, tt.want)
		}
	}
}

// TestReadFrameRoundTrip encodes every frame type with AppendFrame and
// reads it back, through readers that return data in awkward pieces.
func TestReadFrameRoundTrip(t *testing.T) {
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one-byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data-err", iotest.DataErrReader},
	}
	for _, tc := range sampleFrames() {
		for _, rd := range readers {
			for _, size := range []int{minBufio, 4096} {
				t.Run(fmt.Sprintf("%s/%s/bufio%d", tc.name, rd.name, size), func(t *testing.T) {
					frame := AppendFrame(nil, tc.t, tc.msg)
					r := NewReader(bufio.NewReaderSize(rd.wrap(bytes.NewReader(frame)), size), 1<<16)
					typ, body, err := r.ReadFrame()
					if err != nil {
						t.Fatalf("ReadFrame() error = %v", err)
					}
					if typ != tc.t {
						t.Errorf("ReadFrame() type = %v; want %v", typ, tc.t)
					}
					if want := frame[HeaderSize:]; !bytes.Equal(body, want) {
						t.Errorf("ReadFrame() body = % x; want % x", body, want)
					}
					got := newMessage(tc.t)
					if err := got.UnmarshalVT(body); err != nil {
						t.Fatalf("%v UnmarshalVT error = %v", tc.t, err)
					}
					if !proto.Equal(got.(proto.Message), tc.msg.(proto.Message)) {
						t.Errorf("%v decoded = %v; want %v", tc.t, got, tc.msg)
					}
					if _, _, err := r.ReadFrame(); err != io.EOF {
						t.Errorf("ReadFrame() at end = %v; want io.EOF", err)
					}
				})
			}
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	const maxFrame = 64
	frame := AppendFrame(nil, TypePublish, &Envelope{Topic: "a.b", Payload: bytes.Repeat([]byte{'x'}, 40)})
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, io.EOF},
		{"length 0", []byte{0, 0, 0, 0, 3}, ErrMalformedFrame},
		{"length 0 without type byte", []byte{0, 0, 0, 0}, ErrMalformedFrame}, // refused at once (TestReadFrameZeroLengthAtOnce)
		{"4 GiB", []byte{0xff, 0xff, 0xff, 0xff, 3}, ErrFrameTooLarge},
		{"2 GiB", []byte{0x80, 0, 0, 0, 3}, ErrFrameTooLarge},
		{"one over max", []byte{0, 0, 0, maxFrame + 1, 3}, ErrFrameTooLarge},
		{"header 1 byte", []byte{0}, io.ErrUnexpectedEOF},
		{"header 4 bytes", []byte{0, 0, 0, 2}, io.ErrUnexpectedEOF},
		{"body missing", []byte{0, 0, 0, 2, 10}, io.ErrUnexpectedEOF},
		{"body short", frame[:len(frame)-1], io.ErrUnexpectedEOF},
		{"body short by half", frame[:HeaderSize+(len(frame)-HeaderSize)/2], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		for _, size := range []int{minBufio, 4096} { // large and small paths
			t.Run(fmt.Sprintf("%s/bufio%d", tt.name, size), func(t *testing.T) {
				r := NewReader(bufio.NewReaderSize(bytes.NewReader(tt.in), size), maxFrame)
				typ, body, err := r.ReadFrame()
				if !errors.Is(err, tt.want) {
					t.Fatalf("ReadFrame(% x) = %v, %d bytes, %v; want error %v", tt.in, typ, len(body), err, tt.want)
				}
				if body != nil {
					t.Errorf("ReadFrame(% x) body = % x on error; want nil", tt.in, body)
				}
			})
		}
	}
}

func TestReadFrameTooLargeMessage(t *testing.T) {
	r := NewReader(bufio.NewReader(bytes.NewReader([]byte{0, 1, 0, 0, 3})), 1000)
	_, _, err := r.ReadFrame()
	if got, want := err.Error(), "frame too large: 65536 bytes, limit 1000"; got != want {
		t.Errorf("ReadFrame() error = %q; want %q", got, want)
	}
}

// endlessReader serves a header and then fails the test if the body is
// read: an oversize frame must be refused from its header alone.
type endlessReader struct {
	t      *testing.T
	header []byte
}

func (r *endlessReader) Read(p []byte) (int, error) {
	if len(r.header) == 0 {
		r.t.Error("Reader read past the header of an oversize frame")
		return 0, io.ErrNoProgress
	}
	n := copy(p, r.header)
	r.header = r.header[n:]
	return n, nil
}

func TestReadFrameOversizeReadsOnlyHeader(t *testing.T) {
	for _, size := range []int{minBufio, 64 << 10} {
		src := &endlessReader{t: t, header: []byte{0xff, 0xff, 0xff, 0xff, byte(TypePublish)}}
		r := NewReader(bufio.NewReaderSize(src, size), 1<<20+FrameOverhead)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := r.ReadFrame()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("ReadFrame(4 GiB header) error = %v; want ErrFrameTooLarge", err)
		}
		if r.large != nil {
			t.Errorf("ReadFrame(4 GiB header) kept a %d-byte large buffer; want none", cap(r.large))
		}
		// The error value and its message: a few bytes, not a body. The
		// count is process-wide, so the bound leaves room for the runtime
		// and test framework allocating meanwhile (5.7 KB seen under -race).
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("ReadFrame(4 GiB header) allocated %d bytes; want under 64 KiB", n)
		}
	}
}

func TestReadFrameMaxSizeAccepted(t *testing.T) {
	const maxFrame = 100
	body := bytes.Repeat([]byte{0xab}, maxFrame-1)
	in := append(AppendHeader(nil, TypeStatsResponse, len(body)), body...)
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(in), minBufio), maxFrame)
	typ, got, err := r.ReadFrame()
	if err != nil || typ != TypeStatsResponse || !bytes.Equal(got, body) {
		t.Errorf("ReadFrame(frame of exactly max %d) = %v, %d bytes, %v; want STATS_RESPONSE, %d bytes, nil",
			maxFrame, typ, len(got), err, len(body))
	}
}

type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadFramePassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	long := AppendFrame(nil, TypeHello, &Hello{ClientName: strings.Repeat("n", 50)})
	for _, in := range [][]byte{nil, {0, 0}, long[:HeaderSize+3], long[:len(long)-1]} {
		for _, size := range []int{minBufio, 4096} {
			r := NewReader(bufio.NewReaderSize(&errReader{data: in, err: boom}, size), 1<<10)
			if _, _, err := r.ReadFrame(); !errors.Is(err, boom) {
				t.Errorf("ReadFrame(% x then boom) error = %v; want boom", in, err)
			}
		}
	}
}

// TestReadFrameLargePath reads frames longer than the bufio buffer, mixed
// with small ones, and checks the large buffer is reused.
func TestReadFrameLargePath(t *testing.T) {
	large1 := &Envelope{Topic: "events.process.batch", Payload: bytes.Repeat([]byte{1}, 300)}
	small := &Ping{Id: 7}
	large2 := &Envelope{Topic: "events.process.batch", Payload: bytes.Repeat([]byte{2}, 200)}
	var in []byte
	in = AppendFrame(in, TypePublish, large1)
	in = AppendFrame(in, TypePing, small)
	in = AppendFrame(in, TypePublish, large2)
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(in), minBufio), 1<<10)

	wants := []struct {
		t   Type
		msg Message
	}{{TypePublish, large1}, {TypePing, small}, {TypePublish, large2}}
	var firstLarge *byte
	for i, w := range wants {
		typ, body, err := r.ReadFrame()
		if err != nil || typ != w.t {
			t.Fatalf("frame %d: ReadFrame() = %v, %v; want %v, nil", i, typ, err, w.t)
		}
		if want := AppendFrame(nil, w.t, w.msg)[HeaderSize:]; !bytes.Equal(body, want) {
			t.Errorf("frame %d: body = % x; want % x", i, body, want)
		}
		if len(body) > minBufio {
			if firstLarge == nil {
				firstLarge = &r.large[0]
			} else if &r.large[0] != firstLarge {
				t.Errorf("frame %d: large buffer reallocated for a smaller frame", i)
			}
			if &body[0] != &r.large[0] {
				t.Errorf("frame %d: %d-byte body not read into the large buffer", i, len(body))
			}
		}
	}
}

// TestReadFrameDropsHugeBuffer: a buffer above keepLarge is not reused, so
// it can be collected.
func TestReadFrameDropsHugeBuffer(t *testing.T) {
	big := &Envelope{Topic: "events.process.batch", Payload: make([]byte, keepLarge+10)}
	var in []byte
	in = AppendFrame(in, TypePublish, big)
	in = AppendFrame(in, TypePublish, big)
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(in), minBufio), 2*keepLarge)
	_, first, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if &first[0] == &second[0] {
		t.Errorf("a %d-byte buffer was reused; want buffers above %d bytes replaced", len(first), keepLarge)
	}
}

// TestReadFrameConsecutive reads a burst of frames from one buffer: every
// body must be right when returned, although bodies alias the buffer.
func TestReadFrameConsecutive(t *testing.T) {
	var in []byte
	var want [][]byte
	var types []Type
	for i := range 50 {
		var tp Type
		var m Message
		switch i % 3 {
		case 0:
			tp, m = TypePublish, &Envelope{Topic: "a.b", Payload: bytes.Repeat([]byte{byte(i)}, i*7), PublishedAt: int64(i)}
		case 1:
			tp, m = TypePing, &Ping{Id: uint64(i)}
		default:
			tp, m = TypeStatsRequest, &StatsRequest{} // empty body
		}
		f := AppendFrame(nil, tp, m)
		in = append(in, f...)
		want = append(want, f[HeaderSize:])
		types = append(types, tp)
	}
	for _, size := range []int{minBufio, 64, 4096} {
		r := NewReader(bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(in)), size), 1<<12)
		for i := range want {
			typ, body, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("bufio %d: frame %d: ReadFrame() error = %v", size, i, err)
			}
			if typ != types[i] || !bytes.Equal(body, want[i]) {
				t.Errorf("bufio %d: frame %d = %v % x; want %v % x", size, i, typ, body, types[i], want[i])
			}
		}
		if _, _, err := r.ReadFrame(); err != io.EOF {
			t.Errorf("bufio %d: ReadFrame() after the last frame = %v; want io.EOF", size, err)
		}
	}
}

func TestHasFrame(t *testing.T) {
	ping := AppendFrame(nil, TypePing, &Ping{Id: 1})
	big := AppendFrame(nil, TypePublish, &Envelope{Topic: "a.b", Payload: make([]byte, 100)})
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"nothing buffered", nil, false},
		{"partial header", ping[:3], false},
		{"header only", ping[:HeaderSize], false},
		{"body short by one", ping[:len(ping)-1], false},
		{"whole frame", ping, true},
		{"whole frame and more", append(append([]byte(nil), ping...), ping[:2]...), true},
		{"empty body", AppendFrame(nil, TypeStatsRequest, &StatsRequest{}), true},
		// ReadFrame answers a zero length without reading, so it is "ready".
		{"length 0", []byte{0, 0, 0, 0, 1}, true},
		{"bigger than the buffer", big, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(bytes.NewReader(tt.in), 64)
			br.Peek(1) // fill the buffer
			r := NewReader(br, 1<<10)
			if got := r.HasFrame(); got != tt.want {
				t.Errorf("HasFrame() with % x buffered = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestHasFrameMeansNoRead checks HasFrame's promise: when it is true,
// ReadFrame returns without reading from the connection.
func TestHasFrameMeansNoRead(t *testing.T) {
	var in []byte
	for i := range 20 {
		in = AppendFrame(in, TypePing, &Ping{Id: uint64(i)})
	}
	src := &countingReader{r: iotest.HalfReader(bytes.NewReader(in))}
	r := NewReader(bufio.NewReaderSize(src, 64), 1<<10)
	frames := 0
	for {
		has := r.HasFrame()
		before := src.reads
		_, _, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadFrame() error = %v", err)
		}
		frames++
		if has && src.reads != before {
			t.Errorf("frame %d: HasFrame() = true but ReadFrame read from the source", frames)
		}
	}
	if frames != 20 {
		t.Errorf("read %d frames; want 20", frames)
	}
}

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestAppendFrameAppends(t *testing.T) {
	prefix := []byte("prefix")
	got := AppendFrame(append([]byte(nil), prefix...), TypeOK, &OK{RequestId: 300})
	want := append(append([]byte(nil), prefix...), 0, 0, 0, 4, byte(TypeOK), 0x08, 0xac, 0x02)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendFrame(prefix, OK{300}) = % x; want % x", got, want)
	}
	if n := binary.BigEndian.Uint32(got[len(prefix):]); int(n) != len(got)-len(prefix)-4 {
		t.Errorf("AppendFrame length field = %d; want %d", n, len(got)-len(prefix)-4)
	}
}

// TestReadFrameZeroLengthAtOnce: a length-0 header is refused as soon as
// its four bytes arrive, without waiting for a type byte.
func TestReadFrameZeroLengthAtOnce(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte{0, 0, 0, 0}) // and nothing more
	r := NewReader(bufio.NewReader(pr), 1000)
	if _, _, err := r.ReadFrame(); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("ReadFrame(length 0) = %v; want ErrMalformedFrame", err)
	}
}

func TestAppendConfirm(t *testing.T) {
	for _, n := range []uint64{1, 127, 128, 1<<64 - 1} { // never 0: the broker confirms something or nothing
		frame := AppendConfirm(nil, n)
		if len(frame) > ConfirmSize {
			t.Errorf("AppendConfirm(%d): %d bytes, more than ConfirmSize %d", n, len(frame), ConfirmSize)
		}
		if want := AppendFrame(nil, TypeConfirm, &Confirm{PublishSeq: n}); !bytes.Equal(frame, want) {
			t.Errorf("AppendConfirm(%d) = % x; want % x", n, frame, want)
		}
	}
}
