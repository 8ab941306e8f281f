package wire

import (
	"bytes"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// A publisher usually sends one correlation many times with only its
// sequence number changed. These helpers let the client encode the rest
// once (AppendCorrelationBase, AppendPublish) and let a receiver recognize
// a repeat without decoding it again (CorrelationShape).

// seqTag is the one-byte tag of Correlation.sequence.
var seqTag = protowire.AppendTag(nil, fieldCorrSequence, protowire.VarintType)[0]

// AppendCorrelationBase appends c encoded without its sequence number, in
// a canonical form: fields in number order, tags sorted by key. Equal
// metadata therefore always encodes to equal bytes.
func AppendCorrelationBase(dst []byte, c *Correlation) []byte {
	for _, f := range []struct {
		num protowire.Number
		s   string
	}{{fieldCorrID, c.CorrelationId}, {fieldCorrParent, c.ParentId}, {fieldCorrRoot, c.RootId}, {fieldCorrStage, c.Stage}, {fieldCorrSource, c.SourceProcess}} {
		if f.s != "" {
			dst = protowire.AppendTag(dst, f.num, protowire.BytesType)
			dst = protowire.AppendString(dst, f.s)
		}
	}
	keys := make([]string, 0, len(c.Tags))
	for k := range c.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := c.Tags[k]
		dst = protowire.AppendTag(dst, fieldCorrTags, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(1+protowire.SizeBytes(len(k))+1+protowire.SizeBytes(len(v))))
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendString(dst, v)
	}
	if c.StartedAt != 0 {
		dst = protowire.AppendTag(dst, fieldCorrStarted, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, uint64(c.StartedAt))
	}
	return dst
}

// AppendWithoutSequence appends the encoded Correlation b, which
// DecodeCorrelation accepted, without its sequence field: the base
// CorrelationFields sends with a sequence of its own.
func AppendWithoutSequence(dst, b []byte) []byte {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[max(n, 0):])
		if n < 0 || m < 0 { // not accepted by DecodeCorrelation: keep the rest as it is
			return append(dst, b...)
		}
		if num != fieldCorrSequence {
			dst = append(dst, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return dst
}

// CorrelationFields is a message's correlation as a PUBLISH or DELIVER
// envelope carries it (PROTOCOL.md §5.3.1, §5.4.1): in full, as the
// correlation field built from Base (see AppendCorrelationBase) and Seq;
// in full and naming it Ref on the connection (Define); or as Ref and Seq
// alone, once Ref is defined. A nil *CorrelationFields, or a nil Base
// without Ref, is no correlation.
type CorrelationFields struct {
	Base   []byte
	Seq    uint64
	Ref    uint64
	Define bool
}

func (c *CorrelationFields) full() bool { return c.Ref == 0 || c.Define }

// size is the encoded size of the fields, with refField and seqField the
// envelope's field numbers for Ref and Seq.
func (c *CorrelationFields) size(refField, seqField protowire.Number) int {
	if c == nil {
		return 0
	}
	n := 0
	if c.full() && c.Base != nil {
		n += 1 + protowire.SizeBytes(c.baseSeqLen())
	}
	if c.Ref != 0 {
		n += protowire.SizeTag(refField) + protowire.SizeVarint(c.Ref)
		if !c.Define && c.Seq != 0 {
			n += protowire.SizeTag(seqField) + protowire.SizeVarint(c.Seq)
		}
	}
	return n
}

func (c *CorrelationFields) baseSeqLen() int {
	if c.Seq == 0 {
		return len(c.Base)
	}
	return len(c.Base) + 1 + protowire.SizeVarint(c.Seq)
}

// append appends the fields, with refField and seqField the envelope's
// field numbers for Ref and Seq.
func (c *CorrelationFields) append(dst []byte, refField, seqField protowire.Number) []byte {
	if c == nil {
		return dst
	}
	if c.full() && c.Base != nil {
		dst = protowire.AppendTag(dst, fieldCorrelation, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(c.baseSeqLen()))
		dst = append(dst, c.Base...)
		if c.Seq != 0 {
			dst = append(dst, seqTag)
			dst = protowire.AppendVarint(dst, c.Seq)
		}
	}
	if c.Ref != 0 {
		dst = protowire.AppendTag(dst, refField, protowire.VarintType)
		dst = protowire.AppendVarint(dst, c.Ref)
		if !c.Define && c.Seq != 0 {
			dst = protowire.AppendTag(dst, seqField, protowire.VarintType)
			dst = protowire.AppendVarint(dst, c.Seq)
		}
	}
	return dst
}

// AppendPublish appends a PUBLISH frame of env, whose Correlation must be
// nil, followed by the correlation fields of corr (nil: none).
func AppendPublish(dst []byte, env *Envelope, corr *CorrelationFields) []byte {
	envLen := env.SizeVT()
	dst = AppendHeader(dst, TypePublish, envLen+corr.size(fieldCorrRef, fieldCorrSeq))
	start := len(dst)
	dst = append(dst, make([]byte, envLen)...)
	if _, err := env.MarshalToSizedBufferVT(dst[start:]); err != nil {
		panic("wire: marshal PUBLISH: " + err.Error()) // SizeVT and MarshalToSizedBufferVT disagree
	}
	return corr.append(dst, fieldCorrRef, fieldCorrSeq)
}

// AppendRepublish appends a PUBLISH frame of body, an envelope that
// ScanPublish accepted as v, with its correlation fields replaced by corr
// (nil: none). A publish resent on a new connection names its correlation
// by that connection's refs, not the old one's.
func AppendRepublish(dst, body []byte, v *PublishView, corr *CorrelationFields) []byte {
	head, tail, _ := v.Uncorrelated(body, nil)
	dst = AppendHeader(dst, TypePublish, len(head)+len(tail)+corr.size(fieldCorrRef, fieldCorrSeq))
	dst = append(dst, head...)
	dst = append(dst, tail...)
	return corr.append(dst, fieldCorrRef, fieldCorrSeq)
}

// PublishSize is the frame size AppendPublish produces for an envelope of
// envLen bytes (Envelope.SizeVT).
func PublishSize(envLen int, corr *CorrelationFields) int {
	return HeaderSize + envLen + corr.size(fieldCorrRef, fieldCorrSeq)
}

// CorrelationShape remembers an encoded Correlation with its sequence
// number cut out, to recognize the next encoding that differs from it in
// the sequence number alone. The zero value matches nothing.
type CorrelationShape struct {
	before, after []byte // the encoding around the sequence field
	hasSeq        bool
	ok            bool
}

// Set remembers b, which must have decoded without error. An encoding with
// more than one sequence field is not remembered (the last would win, so
// a repeat could not be recognized by one cut).
func (s *CorrelationShape) Set(b []byte) {
	s.ok, s.hasSeq = false, false
	cut, end, seqs := 0, 0, 0
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return
		}
		if num == fieldCorrSequence {
			if n != 1 || typ != protowire.VarintType {
				return
			}
			seqs++
			cut = len(b) - len(rest)
			end = cut + n + m
		}
		rest = rest[n+m:]
	}
	switch seqs {
	case 0:
		s.before = append(s.before[:0], b...)
		s.after = s.after[:0]
	case 1:
		s.before = append(s.before[:0], b[:cut]...)
		s.after = append(s.after[:0], b[end:]...)
		s.hasSeq = true
	default:
		return
	}
	s.ok = true
}

// Reset forgets the remembered encoding.
func (s *CorrelationShape) Reset() { s.ok = false }

// Match reports whether b is the remembered encoding with, at most, a
// different sequence number, which it returns (0: none).
func (s *CorrelationShape) Match(b []byte) (seq uint64, ok bool) {
	if !s.ok || !bytes.HasPrefix(b, s.before) {
		return 0, false
	}
	rest := b[len(s.before):]
	if !s.hasSeq {
		return 0, len(rest) == 0
	}
	if len(rest) == 0 || rest[0] != seqTag {
		return 0, false
	}
	seq, n := protowire.ConsumeVarint(rest[1:])
	if n < 0 {
		return 0, false
	}
	return seq, bytes.Equal(rest[1+n:], s.after)
}
