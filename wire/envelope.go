package wire

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Envelope field numbers (eventbus.proto). 1-15 belong to the publisher,
// 16-31 to the broker.
const (
	fieldTopic       protowire.Number = 1
	fieldPayload     protowire.Number = 2
	fieldPublishedAt protowire.Number = 3
	fieldCorrelation protowire.Number = 4
	fieldFinal       protowire.Number = 5
	fieldCorrRef     protowire.Number = 6
	fieldCorrSeq     protowire.Number = 7
	fieldSequence    protowire.Number = 8
	fieldRequestID   protowire.Number = 9
	fieldDeadline    protowire.Number = 10
	fieldRecipient   protowire.Number = 11

	firstBrokerField   protowire.Number = 16
	lastBrokerField    protowire.Number = 31
	fieldReceivedAt    protowire.Number = 16
	fieldPublisherPID  protowire.Number = 17
	fieldPublisherUID  protowire.Number = 18
	fieldPublisherComp protowire.Number = 19
	fieldDeliveryRef   protowire.Number = 20
	fieldDeliverySeq   protowire.Number = 21
	fieldPubSession    protowire.Number = 22
	fieldReplyToken    protowire.Number = 23
	fieldRedelivered   protowire.Number = 24

	fieldDeliverSubID    protowire.Number = 1
	fieldDeliverEnvelope protowire.Number = 2
)

// MaxCorrelationRef is the largest correlation ref a connection may use
// (PROTOCOL.md §5.3.1): a publisher names at most this many correlations
// at once, so the broker's table of them stays small.
const MaxCorrelationRef = 1024

// PublishView is what the broker needs from a PUBLISH body. Topic and
// Correlation alias the body.
type PublishView struct {
	Topic       []byte
	Payload     []byte
	PayloadLen  int
	PublishedAt int64
	// Correlation is the encoded Correlation message, nil if absent.
	Correlation []byte
	// CorrelationRef names the correlation on the connection (0: none);
	// CorrelationSeq is the sequence of a publish by reference.
	CorrelationRef, CorrelationSeq uint64
	Final                          bool
	Sequence                       uint64 // the publisher's session sequence; 0: none
	// RequestID, if not 0, makes the publish a request, with its deadline
	// (Unix ns, 0: none given).
	RequestID uint64
	Deadline  int64
	Recipient []byte // a directed request's component; nil: any

	// The correlation fields (4, 6, 7) lie in body[corrStart:corrEnd];
	// interleaved says other fields lie there too.
	corrStart, corrEnd int
	interleaved        bool
}

// HasCorrelation reports whether the publish carries correlation
// metadata, in full or by reference.
func (v *PublishView) HasCorrelation() bool { return v.Correlation != nil || v.CorrelationRef != 0 }

// Uncorrelated returns body, which ScanPublish accepted as v, without its
// correlation fields, in at most two pieces; scratch is used, and
// returned, when the fields are interleaved with others.
func (v *PublishView) Uncorrelated(body, scratch []byte) (head, tail, scratchOut []byte) {
	switch {
	case !v.HasCorrelation():
		return body, nil, scratch
	case !v.interleaved:
		return body[:v.corrStart], body[v.corrEnd:], scratch
	}
	scratch = scratch[:0]
	for rest := body; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		n += protowire.ConsumeFieldValue(num, typ, rest[n:]) // ScanPublish accepted it
		if !isCorrelationField(num) {
			scratch = append(scratch, rest[:n]...)
		}
		rest = rest[n:]
	}
	return scratch, nil, scratch
}

func isCorrelationField(num protowire.Number) bool {
	return num == fieldCorrelation || num == fieldCorrRef || num == fieldCorrSeq
}

// ScanPublish checks that body is a well-formed Envelope holding only
// publisher-owned fields, each at most once, without decoding it into Go
// values (PROTOCOL.md §5.3). It does not validate the topic's syntax.
func ScanPublish(body []byte) (PublishView, error) {
	var v PublishView
	var seen uint32 // bit per known field number
	size := len(body)
	otherAfterCorr := false // a non-correlation field follows a correlation field
	for len(body) > 0 {
		start := size - len(body)
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return v, malformed("publish: bad field tag: %v", protowire.ParseError(n))
		}
		body = body[n:]
		if num >= firstBrokerField && num <= lastBrokerField {
			return v, malformed("publish sets broker-owned envelope field %d", num)
		}
		want, known := publishFieldType(num)
		if !known {
			return v, malformed("publish has unknown envelope field %d (protocol version %d)", num, Version)
		}
		if typ != want {
			return v, malformed("publish envelope field %d has wire type %d, want %d", num, typ, want)
		}
		if seen&(1<<num) != 0 {
			return v, malformed("publish repeats envelope field %d", num)
		}
		seen |= 1 << num
		// Each value is parsed once, by its (checked) wire type.
		var u uint64
		var b []byte
		switch typ {
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(body)
		case protowire.Fixed64Type:
			u, n = protowire.ConsumeFixed64(body)
		default:
			u, n = protowire.ConsumeVarint(body)
		}
		if n < 0 {
			return v, malformed("publish envelope field %d: %v", num, protowire.ParseError(n))
		}
		switch num {
		case fieldTopic:
			v.Topic = b
		case fieldPayload:
			v.Payload, v.PayloadLen = b, len(b)
		case fieldPublishedAt:
			v.PublishedAt = int64(u)
		case fieldCorrelation:
			v.Correlation = b
			if v.Correlation == nil {
				v.Correlation = []byte{} // present but empty: still "present"
			}
		case fieldFinal:
			v.Final = u != 0
		case fieldCorrRef:
			v.CorrelationRef = u
		case fieldCorrSeq:
			v.CorrelationSeq = u
		case fieldSequence:
			v.Sequence = u
		case fieldRequestID:
			v.RequestID = u
		case fieldDeadline:
			v.Deadline = int64(u)
		case fieldRecipient:
			v.Recipient = b
		}
		body = body[n:]
		switch {
		case !isCorrelationField(num):
			otherAfterCorr = otherAfterCorr || v.corrEnd > 0
		case v.corrEnd == 0:
			v.corrStart, v.corrEnd = start, size-len(body)
		default:
			v.interleaved = v.interleaved || otherAfterCorr
			v.corrEnd = size - len(body)
		}
	}
	if seen&(1<<fieldTopic) == 0 {
		return v, Errorf(ErrorCode_ERROR_CODE_INVALID_TOPIC, "publish has no topic")
	}
	return v, checkCorrelationRef(&v, seen)
}

// checkCorrelationRef checks fields 6 and 7 (PROTOCOL.md §5.3.1).
func checkCorrelationRef(v *PublishView, seen uint32) error {
	hasRef, hasSeq := seen&(1<<fieldCorrRef) != 0, seen&(1<<fieldCorrSeq) != 0
	switch {
	case hasSeq && !hasRef:
		return malformed("publish has correlation_sequence without correlation_ref")
	case hasSeq && v.Correlation != nil:
		return malformed("publish has correlation_sequence with correlation: the sequence goes in the correlation")
	case hasRef && (v.CorrelationRef == 0 || v.CorrelationRef > MaxCorrelationRef):
		return Errorf(ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref %d out of range 1-%d", v.CorrelationRef, MaxCorrelationRef)
	}
	return nil
}

func publishFieldType(num protowire.Number) (protowire.Type, bool) {
	switch num {
	case fieldTopic, fieldPayload, fieldCorrelation, fieldRecipient:
		return protowire.BytesType, true
	case fieldPublishedAt, fieldDeadline:
		return protowire.Fixed64Type, true
	case fieldFinal, fieldCorrRef, fieldCorrSeq, fieldSequence, fieldRequestID:
		return protowire.VarintType, true
	}
	return 0, false
}

func malformed(format string, args ...any) *Error {
	return Errorf(ErrorCode_ERROR_CODE_MALFORMED_FRAME, format, args...)
}

// AppendPublisherFields appends the broker-owned identity fields of an
// envelope, with the connection's session (0: none). The result is
// constant per connection, so the broker builds it once at hello.
func AppendPublisherFields(dst []byte, pid int32, uid uint32, component string, session uint64) []byte {
	dst = protowire.AppendTag(dst, fieldPublisherPID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(pid))
	dst = protowire.AppendTag(dst, fieldPublisherUID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(uid))
	if component != "" {
		dst = protowire.AppendTag(dst, fieldPublisherComp, protowire.BytesType)
		dst = protowire.AppendString(dst, component)
	}
	if session != 0 {
		dst = protowire.AppendTag(dst, fieldPubSession, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, session)
	}
	return dst
}

// receivedAtSize is the encoded size of the received_at field.
const receivedAtSize = 2 + 8

// Delivery is one routed message: the publisher's envelope without its
// correlation fields (Head then Tail), the receive time and the publisher
// fields (AppendPublisherFields).
type Delivery struct {
	Head, Tail []byte
	ReceivedAt int64
	Publisher  []byte
	// ReplyToken, if not 0, is appended as reply_token: a request
	// delivered to a responder (PROTOCOL.md §5.9); Redelivered marks its
	// redelivery to another queue group member.
	ReplyToken  uint64
	Redelivered bool
	// Session and Sequence identify the publish for a queue group's
	// duplicate check; they are not encoded (the envelope has them).
	Session, Sequence uint64
}

// AppendDeliver appends a DELIVER frame of d for one subscription: the
// publisher's envelope bytes as received, then received_at and the
// publisher fields, which later in the encoding override any earlier value
// (PROTOCOL.md §5.4), then the correlation, as fields 4, 20 and 21
// (§5.4.1). It allocates only if dst must grow.
func AppendDeliver(dst []byte, subID uint64, d *Delivery, corr *CorrelationFields) []byte {
	envLen := d.envelopeSize(corr)
	bodyLen := 1 + protowire.SizeVarint(subID) + 1 + protowire.SizeVarint(uint64(envLen)) + envLen
	dst = AppendHeader(dst, TypeDeliver, bodyLen)
	dst = protowire.AppendTag(dst, fieldDeliverSubID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, subID)
	dst = protowire.AppendTag(dst, fieldDeliverEnvelope, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(envLen))
	dst = append(dst, d.Head...)
	dst = append(dst, d.Tail...)
	dst = protowire.AppendTag(dst, fieldReceivedAt, protowire.Fixed64Type)
	dst = protowire.AppendFixed64(dst, uint64(d.ReceivedAt))
	dst = append(dst, d.Publisher...)
	if d.ReplyToken != 0 {
		dst = protowire.AppendTag(dst, fieldReplyToken, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, d.ReplyToken)
	}
	if d.Redelivered {
		dst = protowire.AppendTag(dst, fieldRedelivered, protowire.VarintType)
		dst = protowire.AppendVarint(dst, 1)
	}
	return corr.append(dst, fieldDeliveryRef, fieldDeliverySeq)
}

// replyTokenSize and redeliveredSize are the encoded sizes of the
// reply_token and redelivered fields.
const (
	replyTokenSize  = 2 + 8
	redeliveredSize = 2 + 1
)

func (d *Delivery) envelopeSize(corr *CorrelationFields) int {
	n := len(d.Head) + len(d.Tail) + receivedAtSize + len(d.Publisher) + corr.size(fieldDeliveryRef, fieldDeliverySeq)
	if d.ReplyToken != 0 {
		n += replyTokenSize
	}
	if d.Redelivered {
		n += redeliveredSize
	}
	return n
}

// DeliverSize is the frame size AppendDeliver produces, for queue accounting.
func DeliverSize(subID uint64, d *Delivery, corr *CorrelationFields) int {
	envLen := d.envelopeSize(corr)
	return HeaderSize + 1 + protowire.SizeVarint(subID) + 1 + protowire.SizeVarint(uint64(envLen)) + envLen
}

// DeliverView is a decoded DELIVER frame whose byte fields alias the frame
// body; the client copies what it keeps.
type DeliverView struct {
	SubscriptionID uint64
	Topic          []byte
	Payload        []byte
	PublishedAt    int64
	ReceivedAt     int64
	PublisherPID   int32
	PublisherUID   uint32
	Component      []byte
	Correlation    []byte // encoded Correlation message, nil if absent
	// CorrelationRef is the broker's name for the correlation on this
	// connection (0: none): with Correlation, its definition; alone, a
	// reference, with CorrelationSeq the message's sequence (§5.4.1).
	CorrelationRef, CorrelationSeq uint64
	Final                          bool
	// Sequence and Session identify the message within its publisher's
	// session (PROTOCOL.md §5.3.2); 0: none.
	Sequence, Session uint64
	// A request's id and deadline, and the token to reply with (0: this
	// subscription may not reply).
	RequestID   uint64
	Deadline    int64
	ReplyToken  uint64
	Redelivered bool
}

// DecodeDeliver decodes a DELIVER body without allocating: the hot path of
// every subscriber. On input both accept, it agrees with the generated
// Deliver.UnmarshalVT (FuzzDecodeDeliver checks this); on malformed input
// the two may differ in what they accept, which is harmless since a broker
// only sends what AppendDeliver builds. Unknown fields from a newer broker
// are skipped.
func DecodeDeliver(body []byte, v *DeliverView) error {
	*v = DeliverView{}
	var env []byte
	err := eachField(body, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch {
		case num == fieldDeliverSubID && typ == protowire.VarintType:
			v.SubscriptionID, _ = protowire.ConsumeVarint(val)
		case num == fieldDeliverEnvelope && typ == protowire.BytesType:
			b, _ := protowire.ConsumeBytes(val)
			if env == nil {
				env = b
			} else { // protobuf merges a repeated message field: concatenate
				env = append(append([]byte(nil), env...), b...)
			}
		case num == fieldDeliverSubID || num == fieldDeliverEnvelope:
			return malformed("DELIVER field %d has wire type %d", num, typ)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return eachField(env, v.envelopeField)
}

func (v *DeliverView) envelopeField(num protowire.Number, typ protowire.Type, val []byte) error {
	want, known := deliverFieldType(num)
	if !known {
		return nil
	}
	if typ != want {
		return malformed("envelope field %d has wire type %d, want %d", num, typ, want)
	}
	switch num {
	case fieldTopic:
		v.Topic, _ = protowire.ConsumeBytes(val)
	case fieldPayload:
		v.Payload, _ = protowire.ConsumeBytes(val)
	case fieldPublishedAt:
		u, _ := protowire.ConsumeFixed64(val)
		v.PublishedAt = int64(u)
	case fieldReceivedAt:
		u, _ := protowire.ConsumeFixed64(val)
		v.ReceivedAt = int64(u)
	case fieldPublisherPID:
		u, _ := protowire.ConsumeVarint(val)
		v.PublisherPID = int32(u)
	case fieldPublisherUID:
		u, _ := protowire.ConsumeVarint(val)
		v.PublisherUID = uint32(u)
	case fieldPublisherComp:
		v.Component, _ = protowire.ConsumeBytes(val)
	case fieldCorrelation:
		v.Correlation, _ = protowire.ConsumeBytes(val)
		if v.Correlation == nil {
			v.Correlation = []byte{}
		}
	case fieldFinal:
		u, _ := protowire.ConsumeVarint(val)
		v.Final = u != 0
	case fieldDeliveryRef:
		v.CorrelationRef, _ = protowire.ConsumeVarint(val)
	case fieldDeliverySeq:
		v.CorrelationSeq, _ = protowire.ConsumeVarint(val)
	case fieldSequence:
		v.Sequence, _ = protowire.ConsumeVarint(val)
	case fieldPubSession:
		v.Session, _ = protowire.ConsumeFixed64(val)
	case fieldRequestID:
		v.RequestID, _ = protowire.ConsumeVarint(val)
	case fieldDeadline:
		u, _ := protowire.ConsumeFixed64(val)
		v.Deadline = int64(u)
	case fieldReplyToken:
		v.ReplyToken, _ = protowire.ConsumeFixed64(val)
	case fieldRedelivered:
		u, _ := protowire.ConsumeVarint(val)
		v.Redelivered = u != 0
	}
	return nil
}

func deliverFieldType(num protowire.Number) (protowire.Type, bool) {
	switch num {
	case fieldPublishedAt, fieldReceivedAt, fieldPubSession, fieldReplyToken:
		return protowire.Fixed64Type, true
	case fieldPublisherPID, fieldPublisherUID, fieldDeliveryRef, fieldDeliverySeq, fieldRedelivered:
		return protowire.VarintType, true
	case fieldPublisherComp:
		return protowire.BytesType, true
	}
	return publishFieldType(num)
}

// eachField calls f with every field of a protobuf message body; val
// starts at the field's value.
func eachField(b []byte, f func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("bad field tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return malformed("field %d: %v", num, protowire.ParseError(m))
		}
		if err := f(num, typ, b[:m]); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

// Correlation field numbers (eventbus.proto).
const (
	fieldCorrID       protowire.Number = 1
	fieldCorrParent   protowire.Number = 2
	fieldCorrRoot     protowire.Number = 3
	fieldCorrSequence protowire.Number = 4
	fieldCorrStage    protowire.Number = 5
	fieldCorrSource   protowire.Number = 6
	fieldCorrTags     protowire.Number = 7
	fieldCorrStarted  protowire.Number = 8
)

// CorrelationView is a decoded Correlation whose byte fields alias the
// message; Tags holds key/value pairs in encoding order (a later equal key
// wins, as in a protobuf map).
type CorrelationView struct {
	CorrelationID, ParentID, RootID, Stage, SourceProcess []byte
	Sequence                                              uint64
	StartedAt                                             int64
	Tags                                                  [][2][]byte
}

// DecodeCorrelation decodes a Correlation into v, reusing v.Tags' array,
// without allocating once it is large enough: the broker decodes every
// correlated publish. It accepts what Correlation.UnmarshalVT accepts
// (FuzzDecodeCorrelation checks this) and skips unknown fields.
func DecodeCorrelation(b []byte, v *CorrelationView) error {
	tags := v.Tags[:0]
	*v = CorrelationView{}
	defer func() { v.Tags = tags }()
	// One loop, no callbacks: the broker decodes every new correlation.
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("bad field tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fieldCorrSequence && typ == protowire.VarintType:
			v.Sequence, n = protowire.ConsumeVarint(b)
		case num == fieldCorrStarted && typ == protowire.Fixed64Type:
			var u uint64
			u, n = protowire.ConsumeFixed64(b)
			v.StartedAt = int64(u)
		case num >= fieldCorrID && num <= fieldCorrTags && num != fieldCorrSequence && typ == protowire.BytesType:
			var val []byte
			if val, n = protowire.ConsumeBytes(b); n < 0 {
				break
			}
			if num != fieldCorrTags {
				*v.stringField(num) = val
				break
			}
			kv, err := decodeMapEntry(val)
			if err != nil {
				return err
			}
			tags = append(tags, kv)
		case num >= fieldCorrID && num <= fieldCorrStarted:
			return malformed("correlation field %d has wire type %d", num, typ)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return malformed("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

func (v *CorrelationView) stringField(num protowire.Number) *[]byte {
	switch num {
	case fieldCorrID:
		return &v.CorrelationID
	case fieldCorrParent:
		return &v.ParentID
	case fieldCorrRoot:
		return &v.RootID
	case fieldCorrStage:
		return &v.Stage
	}
	return &v.SourceProcess
}

// decodeMapEntry decodes a map<string,string> entry: key 1, value 2.
func decodeMapEntry(b []byte) ([2][]byte, error) {
	var kv [2][]byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return kv, malformed("bad field tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			kv[num-1], n = protowire.ConsumeBytes(b)
		case num == 1 || num == 2:
			return kv, malformed("correlation tag field %d has wire type %d", num, typ)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return kv, malformed("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return kv, nil
}
