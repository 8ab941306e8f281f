package wire

// The correlation reference state machine (PROTOCOL.md §5.3.1, §5.4.1),
// written once for both ends of a connection: a sender defines a ref the
// first time it sends a correlation in full and then names it by the ref;
// a receiver keeps what each ref was defined as. Refs run from 1 to
// MaxCorrelationRef and are reused from 1 once all are taken; a new
// definition replaces the old one. The client publishes through a
// RefEncoder and reads deliveries through a RefTable; the broker reads
// publishes through a RefTable and queues deliveries through a RefEncoder.

// RefEncoder assigns refs to the correlations one sender names on one
// connection. K identifies a correlation: the client's publish option, the
// broker's decoded definition. The zero value is ready; it is not safe for
// concurrent use.
type RefEncoder[K comparable] struct {
	refs    map[K]uint64
	next    uint64 // the last ref defined
	lastKey K      // the last correlation named...
	lastRef uint64 // ...and its ref; 0: none yet
}

// Fields returns how the next frame sends k's metadata: by its ref if k
// is defined, else in full from base, defining the next ref. seq is the
// frame's sequence number. A sender that sends the frame must call
// Defined when the result has Define set; one that drops it must not, so
// the ref stays undefined for the receiver too.
func (e *RefEncoder[K]) Fields(k K, base []byte, seq uint64) CorrelationFields {
	if e.lastRef != 0 && k == e.lastKey {
		return CorrelationFields{Ref: e.lastRef, Seq: seq}
	}
	if ref, ok := e.refs[k]; ok {
		e.lastKey, e.lastRef = k, ref
		return CorrelationFields{Ref: ref, Seq: seq}
	}
	return CorrelationFields{Base: base, Seq: seq, Ref: e.next%MaxCorrelationRef + 1, Define: true}
}

// Defined records that a frame defining ref as k was sent.
func (e *RefEncoder[K]) Defined(k K, ref uint64) {
	if e.refs == nil || ref == 1 {
		// Forget the correlations of the refs reused from now on.
		e.refs = make(map[K]uint64)
	}
	e.refs[k], e.next = ref, ref
	e.lastKey, e.lastRef = k, ref
}

// Forget makes the next Fields for k define it again: the receiver
// refused the frame that defined it, which leaves the ref undefined there.
func (e *RefEncoder[K]) Forget(k K) {
	delete(e.refs, k)
	if e.lastRef != 0 && e.lastKey == k {
		e.lastRef = 0
	}
}

// RefTable is what each ref was defined as on one connection, for the
// receiver. The zero value is ready; it is not safe for concurrent use.
type RefTable[T any] struct {
	defs []*T // by ref-1; nil: undefined
}

// Lookup returns ref's definition.
func (t *RefTable[T]) Lookup(ref uint64) (*T, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	if ref > uint64(len(t.defs)) || t.defs[ref-1] == nil {
		return nil, Errorf(ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref %d is not defined on this connection", ref)
	}
	return t.defs[ref-1], nil
}

// Define makes def ref's definition; a nil def leaves ref undefined, as a
// refused definition must.
func (t *RefTable[T]) Define(ref uint64, def *T) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	for uint64(len(t.defs)) < ref {
		t.defs = append(t.defs, nil)
	}
	t.defs[ref-1] = def
	return nil
}

func checkRef(ref uint64) error {
	if ref == 0 || ref > MaxCorrelationRef {
		return Errorf(ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref %d out of range 1-%d", ref, MaxCorrelationRef)
	}
	return nil
}
