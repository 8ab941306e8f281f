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

	firstBrokerField   protowire.Number = 16
	lastBrokerField    protowire.Number = 31
	fieldReceivedAt    protowire.Number = 16
	fieldPublisherPID  protowire.Number = 17
	fieldPublisherUID  protowire.Number = 18
	fieldPublisherComp protowire.Number = 19

	fieldDeliverSubID    protowire.Number = 1
	fieldDeliverEnvelope protowire.Number = 2
)

// PublishView is what the broker needs from a PUBLISH body. Topic and
// Correlation alias the body.
type PublishView struct {
	Topic       []byte
	Payload     []byte
	PayloadLen  int
	PublishedAt int64
	// Correlation is the encoded Correlation message, nil if absent.
	Correlation []byte
	Final       bool
}

// ScanPublish checks that body is a well-formed Envelope holding only
// publisher-owned fields, each at most once, without decoding it into Go
// values (PROTOCOL.md §5.3). It does not validate the topic's syntax.
func ScanPublish(body []byte) (PublishView, error) {
	var v PublishView
	var seen uint32 // bit per known field number
	for len(body) > 0 {
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
		n = protowire.ConsumeFieldValue(num, typ, body)
		if n < 0 {
			return v, malformed("publish envelope field %d: %v", num, protowire.ParseError(n))
		}
		switch num {
		case fieldTopic:
			v.Topic, _ = protowire.ConsumeBytes(body)
		case fieldPayload:
			v.Payload, _ = protowire.ConsumeBytes(body)
			v.PayloadLen = len(v.Payload)
		case fieldPublishedAt:
			u, _ := protowire.ConsumeFixed64(body)
			v.PublishedAt = int64(u)
		case fieldCorrelation:
			v.Correlation, _ = protowire.ConsumeBytes(body)
			if v.Correlation == nil {
				v.Correlation = []byte{} // present but empty: still "present"
			}
		case fieldFinal:
			u, _ := protowire.ConsumeVarint(body)
			v.Final = u != 0
		}
		body = body[n:]
	}
	if seen&(1<<fieldTopic) == 0 {
		return v, Errorf(ErrorCode_ERROR_CODE_INVALID_TOPIC, "publish has no topic")
	}
	return v, nil
}

func publishFieldType(num protowire.Number) (protowire.Type, bool) {
	switch num {
	case fieldTopic, fieldPayload, fieldCorrelation:
		return protowire.BytesType, true
	case fieldPublishedAt:
		return protowire.Fixed64Type, true
	case fieldFinal:
		return protowire.VarintType, true
	}
	return 0, false
}

func malformed(format string, args ...any) *Error {
	return Errorf(ErrorCode_ERROR_CODE_MALFORMED_FRAME, format, args...)
}

// AppendPublisherFields appends the broker-owned identity fields of an
// envelope. The result is constant per connection, so the broker builds it
// once at hello.
func AppendPublisherFields(dst []byte, pid int32, uid uint32, component string) []byte {
	dst = protowire.AppendTag(dst, fieldPublisherPID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(pid))
	dst = protowire.AppendTag(dst, fieldPublisherUID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(uid))
	if component != "" {
		dst = protowire.AppendTag(dst, fieldPublisherComp, protowire.BytesType)
		dst = protowire.AppendString(dst, component)
	}
	return dst
}

// receivedAtSize is the encoded size of the received_at field.
const receivedAtSize = 2 + 8

// AppendDeliver appends a DELIVER frame for one subscription: the
// publisher's envelope bytes as received, then received_at and the
// publisher fields, which later in the encoding override any earlier value
// (PROTOCOL.md §5.4). It allocates only if dst must grow.
func AppendDeliver(dst []byte, subID uint64, envelope []byte, receivedAt int64, publisher []byte) []byte {
	envLen := len(envelope) + receivedAtSize + len(publisher)
	bodyLen := 1 + protowire.SizeVarint(subID) + 1 + protowire.SizeVarint(uint64(envLen)) + envLen
	dst = AppendHeader(dst, TypeDeliver, bodyLen)
	dst = protowire.AppendTag(dst, fieldDeliverSubID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, subID)
	dst = protowire.AppendTag(dst, fieldDeliverEnvelope, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(envLen))
	dst = append(dst, envelope...)
	dst = protowire.AppendTag(dst, fieldReceivedAt, protowire.Fixed64Type)
	dst = protowire.AppendFixed64(dst, uint64(receivedAt))
	return append(dst, publisher...)
}

// DeliverSize is the frame size AppendDeliver produces, for queue accounting.
func DeliverSize(subID uint64, envelopeLen, publisherLen int) int {
	envLen := envelopeLen + receivedAtSize + publisherLen
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
	Final          bool
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
	}
	return nil
}

func deliverFieldType(num protowire.Number) (protowire.Type, bool) {
	switch num {
	case fieldPublishedAt, fieldReceivedAt:
		return protowire.Fixed64Type, true
	case fieldPublisherPID, fieldPublisherUID:
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
