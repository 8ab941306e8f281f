package transport

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// TestXucredLayout checks that x/sys/unix still declares struct xucred as
// xucredPID expects: ending in a pointer-sized field, the cr_pid union.
// The conformance suite checks the pid it reads (conformance_unix_test.go).
func TestXucredLayout(t *testing.T) {
	typ := reflect.TypeFor[unix.Xucred]()
	last := typ.Field(typ.NumField() - 1)
	_, size, ok := lastPointerField(&unix.Xucred{})
	if !ok || size != unix.SizeofPtr || last.Offset+size != typ.Size() || typ.Size() != unix.SizeofXucred {
		t.Errorf("unix.Xucred: size %d (SizeofXucred %d), last field %s %v at offset %d; "+
			"want it to end in the pointer-sized cr_pid union (%d bytes)",
			typ.Size(), unix.SizeofXucred, last.Name, last.Type, last.Offset, unix.SizeofPtr)
	}
}
