package chunkbuf

import (
	"bytes"
	"testing"
)

func TestBufferRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3 * ChunkSize, 7}
	var b Buffer
	var want []byte
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		b.Commit(append(b.Tail(n), p...))
		want = append(want, p...)
	}
	if b.Len() != len(want) {
		t.Fatalf("Len() = %d; want %d", b.Len(), len(want))
	}
	var got bytes.Buffer
	n, err := b.WriteTo(&got)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(want))
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteTo wrote %d bytes that differ from the %d appended", got.Len(), len(want))
	}
	if b.Len() != 0 || len(b.chunks) != 0 {
		t.Fatalf("after WriteTo: Len() = %d, %d chunks; want empty", b.Len(), len(b.chunks))
	}
}

func TestTailKeepsAppendsTogether(t *testing.T) {
	var b Buffer
	for i := 0; i < 1000; i++ {
		b.Commit(append(b.Tail(10), "0123456789"...))
	}
	if len(b.chunks) != 1 {
		t.Errorf("1000 appends of 10 bytes used %d chunks; want 1", len(b.chunks))
	}
	b.Reset()
}

func TestSteadyStateAllocationFree(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random, so allocation counts mean nothing under -race")
	}
	var b Buffer
	var sink bytes.Buffer
	sink.Grow(1 << 20)
	p := make([]byte, 200)
	allocs := testing.AllocsPerRun(100, func() {
		for i := 0; i < 500; i++ {
			b.Commit(append(b.Tail(len(p)), p...))
		}
		sink.Reset()
		b.WriteTo(&sink)
	})
	if allocs > 0 {
		t.Errorf("append+write cycle allocates %.1f times; want 0", allocs)
	}
}

func TestDiscard(t *testing.T) {
	tests := []struct {
		sizes   []int
		discard int
	}{
		{[]int{10}, 0},
		{[]int{10}, 4},
		{[]int{10}, 10},
		{[]int{ChunkSize, 100}, ChunkSize},
		{[]int{ChunkSize, 100}, ChunkSize + 50},
		{[]int{ChunkSize, ChunkSize, 7}, 2*ChunkSize + 7},
	}
	for _, tt := range tests {
		var b Buffer
		var want []byte
		for i, n := range tt.sizes {
			p := bytes.Repeat([]byte{byte('a' + i)}, n)
			b.Commit(append(b.Tail(n), p...))
			want = append(want, p...)
		}
		b.Discard(tt.discard)
		want = want[tt.discard:]
		var got bytes.Buffer
		for _, c := range b.Chunks() {
			got.Write(c)
		}
		if b.Len() != len(want) || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("sizes %v, Discard(%d): Len() = %d, chunks hold %d bytes; want %d", tt.sizes, tt.discard, b.Len(), got.Len(), len(want))
		}
		b.Reset()
	}
}
