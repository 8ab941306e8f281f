package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Version is the protocol version this package speaks (PROTOCOL.md §2).
const Version = 1

// Magic opens every connection in both directions, followed by the version
// byte and one reserved zero byte (PROTOCOL.md §2).
const Magic = "EVTBUS"

// PreambleSize is the length of Magic plus the version and reserved bytes.
const PreambleSize = len(Magic) + 2

// HeaderSize is the frame header: a 4-byte big-endian length of what
// follows (type byte + body), then the type byte (PROTOCOL.md §3).
const HeaderSize = 5

// FrameOverhead is the room a frame needs beyond its payload for the topic,
// timestamps and other envelope fields. A frame may be at most
// max_message_size + FrameOverhead bytes long.
const FrameOverhead = 64 << 10

// MaxMessageSize is the largest payload the protocol allows: a broker's
// max_message_size may not exceed it, and a client reads frames up to it
// plus FrameOverhead, whatever the broker announced.
const MaxMessageSize = 64 << 20

// Type identifies a frame's body (PROTOCOL.md §4).
type Type uint8

// Frame types. Values are part of the protocol and never reused.
const (
	TypeHello         Type = 1
	TypeHelloOK       Type = 2
	TypePublish       Type = 3
	TypeSubscribe     Type = 4
	TypeUnsubscribe   Type = 5
	TypeDeliver       Type = 6
	TypeMissed        Type = 7
	TypeOK            Type = 8
	TypeError         Type = 9
	TypePing          Type = 10
	TypePong          Type = 11
	TypeStatsRequest  Type = 12
	TypeStatsResponse Type = 13
	TypeQuery         Type = 14
	TypeQueryResult   Type = 15
	TypeConfirm       Type = 16
	TypeReply         Type = 17
	TypeResponse      Type = 18
	TypeHeartbeat     Type = 19
)

var typeNames = [...]string{
	TypeHello: "HELLO", TypeHelloOK: "HELLO_OK", TypePublish: "PUBLISH",
	TypeSubscribe: "SUBSCRIBE", TypeUnsubscribe: "UNSUBSCRIBE", TypeDeliver: "DELIVER",
	TypeMissed: "MISSED", TypeOK: "OK", TypeError: "ERROR", TypePing: "PING",
	TypePong: "PONG", TypeStatsRequest: "STATS_REQUEST", TypeStatsResponse: "STATS_RESPONSE",
	TypeQuery: "QUERY", TypeQueryResult: "QUERY_RESULT", TypeConfirm: "CONFIRM",
	TypeReply: "REPLY", TypeResponse: "RESPONSE", TypeHeartbeat: "HEARTBEAT",
}

// String returns the name used in messages and output.
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("TYPE(%d)", uint8(t))
}

// Message is what the generated vtprotobuf code gives every body type.
type Message interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
}

// AppendPreamble appends the magic and version.
func AppendPreamble(dst []byte, version uint8) []byte {
	return append(append(dst, Magic...), version, 0)
}

// ReadPreamble reads the peer's preamble and returns its version. A wrong
// magic is an *Error with CodeBadMagic.
func ReadPreamble(r io.Reader) (uint8, error) {
	var p [PreambleSize]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return 0, fmt.Errorf("wire: read preamble: %w", err)
	}
	if string(p[:len(Magic)]) != Magic {
		return 0, Errorf(ErrorCode_ERROR_CODE_BAD_MAGIC, "not an eventbus peer: preamble %q does not start with %q", p[:], Magic)
	}
	return p[len(Magic)], nil
}

// AppendHeader appends a frame header for a body of bodyLen bytes.
func AppendHeader(dst []byte, t Type, bodyLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(bodyLen+1))
	return append(dst, byte(t))
}

// AppendFrame appends m as a complete frame of type t.
func AppendFrame(dst []byte, t Type, m Message) []byte {
	n := m.SizeVT()
	dst = AppendHeader(dst, t, n)
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := m.MarshalToSizedBufferVT(dst[start:]); err != nil {
		// Only possible if SizeVT and MarshalToSizedBufferVT disagree.
		panic("wire: marshal " + t.String() + ": " + err.Error())
	}
	return dst
}

// keepLarge is the largest buffer a Reader keeps for reuse between
// oversize frames; a bigger one is replaced at the next oversize frame and
// otherwise collected, so one huge message does not pin its size for the
// connection's life.
const keepLarge = 256 << 10

// Reader reads frames. Bodies it returns alias its buffers and are valid
// until the next ReadFrame.
type Reader struct {
	br       *bufio.Reader
	maxFrame int
	large    []byte // for frames bigger than br's buffer; see keepLarge
}

// NewReader reads frames of at most maxFrame bytes (type + body) from br.
func NewReader(br *bufio.Reader, maxFrame int) *Reader {
	return &Reader{br: br, maxFrame: maxFrame}
}

// ReadPreamble reads the peer's preamble; see the function ReadPreamble.
func (r *Reader) ReadPreamble() (uint8, error) { return ReadPreamble(r.br) }

// HasFrame reports whether a whole frame is buffered, so that ReadFrame
// will return without reading from the connection.
func (r *Reader) HasFrame() bool {
	if r.br.Buffered() < HeaderSize {
		return false
	}
	hdr, _ := r.br.Peek(HeaderSize)
	return int64(r.br.Buffered()) >= 4+int64(binary.BigEndian.Uint32(hdr))
}

// ReadFrame returns the next frame's type and body. A frame longer than
// the limit is an *Error with CodeFrameTooLarge; the stream cannot be
// resynchronised after it.
func (r *Reader) ReadFrame() (Type, []byte, error) {
	// The length first: a length of 0 is refused at once, not after a
	// type byte that may never come (PROTOCOL.md §3).
	hdr, err := r.br.Peek(4)
	if err == nil && binary.BigEndian.Uint32(hdr) == 0 {
		return 0, nil, Errorf(ErrorCode_ERROR_CODE_MALFORMED_FRAME, "frame length 0: a frame holds at least its type byte")
	}
	if err == nil {
		hdr, err = r.br.Peek(HeaderSize)
	}
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	t := Type(hdr[4])
	// Compared as int64: a length of 2 GiB or more is negative as a 32-bit int.
	if int64(n) > int64(r.maxFrame) {
		return 0, nil, Errorf(ErrorCode_ERROR_CODE_FRAME_TOO_LARGE, "frame too large: %d bytes, limit %d", n, r.maxFrame)
	}
	bodyLen := int(n) - 1
	if _, err := r.br.Discard(HeaderSize); err != nil {
		return 0, nil, err
	}
	if bodyLen <= r.br.Size() {
		body, err := r.br.Peek(bodyLen)
		if err != nil {
			return 0, nil, unexpectedEOF(err)
		}
		r.br.Discard(bodyLen)
		return t, body, nil
	}
	if cap(r.large) < bodyLen || cap(r.large) > keepLarge {
		r.large = make([]byte, bodyLen)
	}
	body := r.large[:bodyLen]
	if _, err := io.ReadFull(r.br, body); err != nil {
		return 0, nil, unexpectedEOF(err)
	}
	return t, body, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ConfirmSize is the largest frame AppendConfirm produces.
const ConfirmSize = HeaderSize + 1 + binary.MaxVarintLen64

// AppendConfirm appends a CONFIRM frame for the first publishSeq PUBLISH
// frames (PROTOCOL.md §5.3.2), publishSeq ≥ 1, without allocating: the broker sends one
// per write to a confirming publisher.
func AppendConfirm(dst []byte, publishSeq uint64) []byte {
	dst = AppendHeader(dst, TypeConfirm, 1+protowire.SizeVarint(publishSeq))
	dst = protowire.AppendTag(dst, 1, protowire.VarintType)
	return protowire.AppendVarint(dst, publishSeq)
}
