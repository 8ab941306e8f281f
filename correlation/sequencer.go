package correlation

import (
	"container/list"
	"sync"
)

// DefaultSequencerSize is how many correlation ids a Sequencer remembers
// when NewSequencer is given no size.
const DefaultSequencerSize = 4096

// Sequencer numbers one publisher's messages within each correlation:
// 1, 2, 3, ... per correlation id. It remembers at most its size of ids;
// past that it forgets the least recently used one, whose numbering would
// restart at 1. It is safe for concurrent use.
type Sequencer struct {
	max int

	mu  sync.Mutex
	ids map[string]*list.Element // value: *seqCount
	lru list.List                // front: most recently used
}

type seqCount struct {
	id string
	n  uint64
}

// NewSequencer returns a Sequencer remembering up to size correlation ids
// (DefaultSequencerSize if size <= 0).
func NewSequencer(size int) *Sequencer {
	if size <= 0 {
		size = DefaultSequencerSize
	}
	return &Sequencer{max: size, ids: make(map[string]*list.Element)}
}

// Next returns the next sequence number for correlationID, starting at 1.
func (s *Sequencer) Next(correlationID string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A publisher usually numbers one correlation many times in a row:
	// the most recently used one is at the front.
	if el := s.lru.Front(); el != nil && el.Value.(*seqCount).id == correlationID {
		c := el.Value.(*seqCount)
		c.n++
		return c.n
	}
	if el, ok := s.ids[correlationID]; ok {
		s.lru.MoveToFront(el)
		c := el.Value.(*seqCount)
		c.n++
		return c.n
	}
	if len(s.ids) >= s.max {
		old := s.lru.Back()
		delete(s.ids, old.Value.(*seqCount).id)
		s.lru.Remove(old)
	}
	s.ids[correlationID] = s.lru.PushFront(&seqCount{id: correlationID, n: 1})
	return 1
}

// Len returns how many correlation ids s remembers.
func (s *Sequencer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}
