package transport

import (
	"encoding/binary"
	"reflect"
)

// xucredPID returns the peer pid in cred, a *unix.Xucred filled by
// LOCAL_PEERCRED on FreeBSD, or 0 if it holds none.
//
// FreeBSD 13 and later record the pid in struct xucred (sys/ucred.h), in
// its last member:
//
//	union {
//		void	*_cr_unused1;	/* compatibility with old ucred */
//		pid_t	cr_pid;
//	};
//
// golang.org/x/sys/unix (v0.49) declares that union as a blank field,
// `_ *byte`. Reading it needs no unsafe code: reflect's Value.Pointer
// returns a pointer field's bits as a uintptr, unexported or blank fields
// included, and pid_t is the union's first 4 bytes. The value is never
// used as a pointer. (Nor does it trouble the garbage collector, which
// scans the field as x/sys allocated it: a pid is at most 99999, FreeBSD's
// PID_MAX, an address below any Go heap.)
//
// 0 means unknown: FreeBSD 12 and older leave the member zero, and a type
// whose last field is not pointer-sized gives 0 rather than a guess.
func xucredPID(cred any) int {
	word, size, ok := lastPointerField(cred)
	if !ok {
		return 0
	}
	return unionPID(word, size, binary.NativeEndian.Uint16([]byte{0, 1}) == 1)
}

// lastPointerField returns the bits and the size of the last field of the
// struct v (or *v), if that field is a pointer; ok is false otherwise.
func lastPointerField(v any) (word uint64, size uintptr, ok bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return 0, 0, false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct || rv.NumField() == 0 {
		return 0, 0, false
	}
	f := rv.Field(rv.NumField() - 1)
	if f.Kind() != reflect.Pointer {
		return 0, 0, false
	}
	return uint64(f.Pointer()), f.Type().Size(), true
}

// unionPID returns the pid_t stored at the start of a pointer-sized union
// whose bits, read as a pointer of size bytes, are word: all of a 4-byte
// word; of an 8-byte word the low half on a little-endian system (every
// FreeBSD port of Go) and the high half on a big-endian one. 0 if the
// result is not a pid (not positive) or size is neither 4 nor 8.
func unionPID(word uint64, size uintptr, bigEndian bool) int {
	var v uint32
	switch {
	case size == 4:
		v = uint32(word)
	case size == 8 && bigEndian:
		v = uint32(word >> 32)
	case size == 8:
		v = uint32(word)
	default:
		return 0
	}
	if pid := int32(v); pid > 0 {
		return int(pid)
	}
	return 0
}
