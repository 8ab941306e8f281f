// Package chunkbuf is a byte queue made of pooled fixed-size chunks and
// written out with one vectored write, so a growing queue never copies
// what it holds and an idle one holds no memory.
package chunkbuf

import (
	"io"
	"net"
	"sync"
)

// ChunkSize is the size of pooled chunks; an append larger than this
// gets a chunk of its own, not pooled.
const ChunkSize = 64 << 10

var pool = sync.Pool{New: func() any { b := make([]byte, 0, ChunkSize); return &b }}

// Buffer is an append-only byte queue. The zero value is empty and ready.
// It is not safe for concurrent use.
type Buffer struct {
	chunks [][]byte
	boxes  []*[]byte // the pool's handle for each chunk; nil if not pooled
	n      int
	vec    net.Buffers // WriteTo's list of chunks, kept for its array
	cursor net.Buffers // what WriteTo consumes; a field so it does not escape
}

// Len is the number of bytes held.
func (b *Buffer) Len() int { return b.n }

// Tail returns the last chunk with room for at least n more bytes. The
// caller appends to it and passes the result to Commit.
func (b *Buffer) Tail(n int) []byte {
	if k := len(b.chunks); k > 0 {
		if t := b.chunks[k-1]; cap(t)-len(t) >= n {
			return t
		}
	}
	var c []byte
	var box *[]byte
	if n <= ChunkSize {
		box = pool.Get().(*[]byte)
		c = (*box)[:0]
	} else {
		c = make([]byte, 0, n)
	}
	b.chunks = append(b.chunks, c)
	b.boxes = append(b.boxes, box)
	return c
}

// Commit stores tail, a Tail result with bytes appended, as the last chunk.
func (b *Buffer) Commit(tail []byte) {
	k := len(b.chunks) - 1
	b.n += len(tail) - len(b.chunks[k])
	b.chunks[k] = tail
}

// Chunks returns the held bytes as a list of slices, for a vectored
// write; they stay valid until the next call that changes b.
func (b *Buffer) Chunks() [][]byte { return b.chunks }

// Discard drops the first n bytes, as after a partial write.
func (b *Buffer) Discard(n int) {
	b.n -= n
	for n > 0 {
		if c := b.chunks[0]; len(c) > n {
			b.chunks[0] = c[n:]
			return
		} else {
			n -= len(c)
		}
		b.release(0)
		b.chunks, b.boxes = b.chunks[1:], b.boxes[1:]
	}
}

func (b *Buffer) release(i int) {
	if box := b.boxes[i]; box != nil {
		*box = (*box)[:0]
		pool.Put(box)
	}
	b.chunks[i], b.boxes[i] = nil, nil
}

// WriteTo writes everything held in as few calls as the writer allows
// (writev on sockets) and empties the buffer, even on error.
func (b *Buffer) WriteTo(w io.Writer) (int64, error) {
	b.vec = append(b.vec[:0], b.chunks...)
	b.cursor = b.vec
	n, err := b.cursor.WriteTo(w)
	clear(b.vec)
	b.Reset()
	return n, err
}

// Reset empties the buffer and returns its chunks to the pool.
func (b *Buffer) Reset() {
	for i := range b.boxes {
		b.release(i)
	}
	b.chunks, b.boxes = b.chunks[:0], b.boxes[:0]
	b.n = 0
}
