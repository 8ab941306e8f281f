package transport

import (
	"reflect"
	"testing"
)

func TestUnionPID(t *testing.T) {
	tests := []struct {
		name      string
		word      uint64
		size      uintptr
		bigEndian bool
		want      int
	}{
		{"little-endian 64-bit", 0x0000_0000_0000_04d2, 8, false, 1234},
		{"little-endian 64-bit, other half ignored", 0xdead_beef_0001_86a0, 8, false, 100000},
		{"big-endian 64-bit", 0x0000_04d2_0000_0000, 8, true, 1234},
		{"big-endian 64-bit, other half ignored", 0x0000_04d2_dead_beef, 8, true, 1234},
		{"32-bit", 0x04d2, 4, false, 1234},
		{"32-bit big-endian", 0x04d2, 4, true, 1234},
		{"FreeBSD 12: zero", 0, 8, false, 0},
		{"negative pid_t", 0xffff_ffff, 8, false, 0},
		{"not pointer-sized", 0x04d2, 2, false, 0},
	}
	for _, tt := range tests {
		if got := unionPID(tt.word, tt.size, tt.bigEndian); got != tt.want {
			t.Errorf("%s: unionPID(%#x, %d, %t) = %d; want %d", tt.name, tt.word, tt.size, tt.bigEndian, got, tt.want)
		}
	}
}

// TestLastPointerField reads the last field of structs shaped like
// x/sys/unix.Xucred on FreeBSD (whose last field is a blank `_ *byte`):
// reflect must read unexported and blank pointer fields without panicking,
// and refuse anything else.
func TestLastPointerField(t *testing.T) {
	var b byte
	type named struct {
		Version uint32
		Groups  [16]uint32
		union   *byte
	}
	type blank struct {
		Version uint32
		Groups  [16]uint32
		_       *byte
	}
	type notPointer struct {
		Version uint32
		Pid     int32
	}
	addr := uint64(reflect.ValueOf(&b).Pointer())
	ptrSize := reflect.TypeFor[*byte]().Size()
	tests := []struct {
		name string
		v    any
		word uint64
		ok   bool
	}{
		{"unexported field", &named{union: &b}, addr, true},
		{"struct value", named{union: &b}, addr, true},
		{"blank field", &blank{Version: 1}, 0, true},
		{"last field not a pointer", &notPointer{Pid: 1234}, 0, false},
		{"nil struct pointer", (*named)(nil), 0, false},
		{"not a struct", &b, 0, false},
		{"empty struct", struct{}{}, 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		word, size, ok := lastPointerField(tt.v)
		if word != tt.word || ok != tt.ok || (ok && size != ptrSize) {
			t.Errorf("%s: lastPointerField(%T) = %#x, %d, %t; want %#x, %d, %t", tt.name, tt.v, word, size, ok, tt.word, ptrSize, tt.ok)
		}
	}
	if got := xucredPID(&blank{}); got != 0 {
		t.Errorf("xucredPID(zero union) = %d; want 0 (unknown, as on FreeBSD 12)", got)
	}
}
