package correlation

import (
	"slices"
	"time"
)

// Event is one correlated message as the broker saw it (docs/PROTOCOL.md §7).
type Event struct {
	Topic       string
	Payload     []byte
	PublishedAt time.Time // the publisher's clock
	ReceivedAt  time.Time // the broker's clock; zero means "now" to Record
	// Publisher identity as the broker verified it.
	PublisherPID       int
	PublisherUID       uint32
	PublisherComponent string
	Metadata           Metadata
	// Final marks the publisher's last result for this correlation (see
	// FinalPublishers and StageState.Completed).
	Final bool
}

// Byte accounting (Config.MaxBytes): every event counts its payload, every
// string it carries and these fixed costs, even where the history shares a
// string between events, so the bound holds whatever the sharing.
const (
	eventOverhead = 256 // the history slot, its index postings and workflow counts
	tagOverhead   = 16  // one tag's slot in the event and its index posting

	// MaxEventOverhead is the most an event's Size adds to the lengths of
	// its payload, topic, component and metadata strings.
	MaxEventOverhead = eventOverhead + MaxTags*tagOverhead
)

// Size returns the bytes ev counts against Config.MaxBytes.
func (ev *Event) Size() int64 {
	tagBytes := 0
	for k, v := range ev.Metadata.Tags {
		tagBytes += len(k) + len(v)
	}
	return ev.size(tagBytes)
}

func (ev *Event) size(tagBytes int) int64 {
	m := &ev.Metadata
	return int64(eventOverhead + len(ev.Payload) + len(ev.Topic) + len(ev.PublisherComponent) +
		len(m.CorrelationID) + len(m.ParentID) + len(m.RootID) + len(m.Stage) + len(m.SourceProcess) +
		len(m.Tags)*tagOverhead + tagBytes)
}

// entry is an event as the history keeps it: its own fields, times as
// Unix nanoseconds, and the meta it shares with the other events of the
// same metadata, publisher and topic. It fits a cache line, so that
// 10,000 events stay well under 10 MB and recording a stream stays cheap.
type entry struct {
	recv, pub int64
	seqNo     uint64
	payload   []byte
	meta      *meta
	size      int32
	final     bool
}

// meta is what a run of events has in common: their publisher, their
// topic and all their metadata but the sequence. The indexes hold metas,
// not events, so a publisher streaming under one metadata adds each event
// to one list (ids) and eviction pops it from there.
//
// Everything but ids is immutable once made, so an entry copied out under
// the lock may be read through its meta without it (as hits do). A meta
// is live while ids is not empty. Once it empties it is dead for good: its
// postings have counted it out (see posting.kill), so nothing may add to
// it again.
type meta struct {
	ids              queue     // receive numbers of its retained events
	first            [1]uint64 // ids' first array: a meta of one event needs no other
	corr             *corrPosting
	root, stage      *posting   // stage is nil when empty
	tags             []*posting // in no particular order; may be shared
	parent, source   string
	topic, component string
	started          int64
	pid              int
	uid              uint32
}

func (m *meta) live() bool { return len(m.ids.ids()) > 0 }

// sends reports whether ev has m's publisher and topic.
func (m *meta) sends(ev *Event) bool {
	return m.pid == ev.PublisherPID && m.uid == ev.PublisherUID &&
		m.topic == ev.Topic && m.component == ev.PublisherComponent
}

// matches reports whether md, of m's correlation, is m's metadata; started
// is md.StartedAt in nanoseconds, tags the postings of md.Tags.
func (m *meta) matches(md *Metadata, started int64, tags []*posting) bool {
	return m.started == started && samePostings(m.tags, tags) && m.root.key == md.RootID &&
		m.stageName() == md.Stage && m.parent == md.ParentID && m.source == md.SourceProcess
}

// queue is a FIFO of receive numbers, ascending.
type queue struct {
	arr  []uint64 // arr[head:] are the receive numbers
	head int      // popped from the front, reclaimed by pop
}

func (q *queue) ids() []uint64 { return q.arr[q.head:] }

func (q *queue) add(seq uint64) { q.arr = append(q.arr, seq) }

// pop drops the front id, the oldest event, and reports whether q emptied.
// Once more of the array is popped than live, it moves the live ids to
// its front, so that add reuses the array rather than growing a new one.
func (q *queue) pop() (empty bool) {
	q.head++
	live := len(q.arr) - q.head
	if live == 0 || q.head >= live && q.head >= 16 {
		copy(q.arr, q.arr[q.head:])
		q.arr, q.head = q.arr[:live], 0
	}
	return live == 0
}

// posting is one index key and the metas that have it, in the order they
// were made. A meta is added when made and counted dead when its last
// event is evicted; the dead are dropped once they are half the list, and
// the posting leaves its index once none is live. So a live meta's
// postings are always the indexed ones.
type posting struct {
	key   string // in the tag index, tagIndexKey(key, value)
	metas []*meta
	dead  int // dead metas in metas
}

func (p *posting) live() int { return len(p.metas) - p.dead }

func (p *posting) add(m *meta) { p.metas = append(p.metas, m) }

// kill counts one of p's metas dead and reports whether none is left live.
func (p *posting) kill() (empty bool) {
	p.dead++
	switch {
	case p.dead == len(p.metas):
		p.metas, p.dead = nil, 0
		return true
	case 2*p.dead >= len(p.metas):
		p.metas = slices.DeleteFunc(p.metas, func(m *meta) bool { return !m.live() })
		p.dead = 0
	}
	return false
}

// corrPosting is a posting of the correlation index. It remembers the
// last parent and tag postings its metas resolved: a new meta of the same
// correlation usually repeats them, and then skips those index lookups.
type corrPosting struct {
	posting
	parent string
	tags   []*posting // shared, read-only, with the metas that use it
}

// tagIndexKey encodes a tag as one string key: a length byte, the key,
// then the value. One string hashes faster than a pair, and the length
// keeps it unambiguous (keys are at most MaxTagKeyBytes < 256).
func tagIndexKey(buf []byte, key, val string) []byte {
	buf = append(buf[:0], byte(len(key)))
	buf = append(buf, key...)
	return append(buf, val...)
}

// tag decodes a tag posting's key.
func (p *posting) tag() (key, val string) {
	n := 1 + int(p.key[0])
	return p.key[1:n], p.key[n:]
}

// samePostings reports whether a and b hold the same postings, in any
// order. Neither holds one twice.
func samePostings(a, b []*posting) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] { // one slice, as usual
		return true
	}
	for _, p := range a {
		if !slices.Contains(b, p) {
			return false
		}
	}
	return true
}

// sameTags reports whether the tag postings ps are exactly tags.
func sameTags(ps []*posting, tags map[string]string) bool {
	if len(ps) != len(tags) {
		return false
	}
	for _, p := range ps {
		k, v := p.tag()
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// publisher identifies a participating process: the verified pid and
// component together, since one pid may host several components over time.
type publisher struct {
	pid       int
	component string
}

func (e *entry) publisher() publisher { return publisher{e.meta.pid, e.meta.component} }

func (m *meta) stageName() string {
	if m.stage == nil {
		return ""
	}
	return m.stage.key
}

// event copies out the public form of e but its tags; the payload still
// aliases the history's array, which may be reused once e is evicted, so
// it must be copied before the lock is released (as hits.add does).
func (e *entry) event() Event {
	m := e.meta
	return Event{
		Topic:              m.topic,
		Payload:            e.payload,
		PublishedAt:        fromNanos(e.pub),
		ReceivedAt:         fromNanos(e.recv),
		PublisherPID:       m.pid,
		PublisherUID:       m.uid,
		PublisherComponent: m.component,
		Final:              e.final,
		Metadata: Metadata{
			CorrelationID: m.corr.key,
			ParentID:      m.parent,
			RootID:        m.root.key,
			Sequence:      e.seqNo,
			Stage:         m.stageName(),
			SourceProcess: m.source,
			StartedAt:     fromNanos(m.started),
		},
	}
}

// hits are events copied out under the lock, payloads included, with the
// tag postings to build their tag maps from (posting keys are immutable)
// once it is released, so a query holds the lock only for plain copies.
type hits struct {
	evs  []Event
	tags [][]*posting
	buf  []byte // where add copies payloads
}

func (h *hits) add(e *entry) {
	ev := e.event()
	if p := ev.Payload; p != nil {
		if h.buf == nil || cap(h.buf)-len(h.buf) < len(p) {
			// Earlier copies keep the old buffer, so it is not grown
			// but replaced by one of a fixed size: what is held stays
			// within a chunk of what was copied.
			h.buf = make([]byte, 0, max(len(p), hitsChunk))
		}
		n := len(h.buf)
		h.buf = append(h.buf, p...)
		ev.Payload = h.buf[n:len(h.buf):len(h.buf)]
	}
	h.evs = append(h.evs, ev)
	h.tags = append(h.tags, e.meta.tags)
}

// hitsChunk is the payload buffer a wait's hits grow by.
const hitsChunk = 64 << 10

func hitsOf(es []*entry) hits {
	total := 0
	for _, e := range es {
		total += len(e.payload)
	}
	h := hits{
		evs:  make([]Event, 0, len(es)),
		tags: make([][]*posting, 0, len(es)),
		buf:  make([]byte, 0, total),
	}
	for _, e := range es {
		h.add(e)
	}
	return h
}

// finish builds the tag maps. Nothing returned aliases the history.
func (h *hits) finish() []Event {
	if len(h.evs) == 0 {
		return nil
	}
	for i := range h.evs {
		if tags := h.tags[i]; len(tags) > 0 {
			ev := &h.evs[i]
			ev.Metadata.Tags = make(map[string]string, len(tags))
			for _, p := range tags {
				k, v := p.tag()
				ev.Metadata.Tags[k] = v
			}
		}
	}
	return h.evs
}
