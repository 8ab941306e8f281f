package correlation

import (
	"time"
)

// Event is one correlated message as the broker saw it (SPEC.md §4).
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

// entry is an event as the history keeps it: times as Unix nanoseconds and
// repeated strings shared through the index postings and the intern table,
// so that 10,000 events stay well under 10 MB. What an entry points to is
// immutable once recorded, except the postings' ids and the correlation
// posting's cache; so a copy of an entry may be read without the lock as
// long as it reads only posting keys (as entry.event and Timeline do).
type entry struct {
	recv, pub, started int64
	seqNo              uint64
	payload            []byte
	topic, component   string
	source, parent     string
	corr               *corrPosting
	root, stage        *posting   // stage is nil when empty
	tags               []*posting // in no particular order; may be shared
	pid                int
	uid                uint32
	size               int32
	final              bool
}

// posting is one index key and the receive numbers of the retained events
// that have it, ascending. Eviction is oldest first, so an evicted event is
// always at the front of each of its postings. A posting leaves its index
// exactly when it empties, so a non-empty posting is always the indexed one.
type posting struct {
	key  string   // in the tag index, tagIndexKey(key, value)
	arr  []uint64 // arr[head:] are the receive numbers
	head int      // ids popped from the front, reclaimed by pop
}

// ids returns the receive numbers of the posting's retained events,
// ascending.
func (p *posting) ids() []uint64 { return p.arr[p.head:] }

func (p *posting) add(seq uint64) { p.arr = append(p.arr, seq) }

// pop drops the front id, the oldest event, and reports whether p emptied.
// Once more of the array is popped than live, it moves the live ids to
// its front, so that add reuses the array rather than growing a new one:
// a posting is a queue, and this keeps it from reallocating at every turn.
func (p *posting) pop() (empty bool) {
	p.head++
	live := len(p.arr) - p.head
	if live == 0 || p.head >= live && p.head >= 16 {
		copy(p.arr, p.arr[p.head:])
		p.arr, p.head = p.arr[:live], 0
	}
	return live == 0
}

// corrPosting is a posting of the correlation index. It remembers the last
// event's parent and tag postings: the next event of the same correlation
// usually repeats them, and then Record skips those index lookups.
type corrPosting struct {
	posting
	parent string
	tags   []*posting // shared, read-only, with the entries that use it
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

// sameTags reports whether ps, still indexed, are exactly tags.
func sameTags(ps []*posting, tags map[string]string) bool {
	if len(ps) != len(tags) {
		return false
	}
	for _, p := range ps {
		if len(p.ids()) == 0 {
			return false
		}
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

func (e *entry) publisher() publisher { return publisher{e.pid, e.component} }

func (e *entry) stageName() string {
	if e.stage == nil {
		return ""
	}
	return e.stage.key
}

// event copies out the public form of e but its tags; the payload still
// aliases the history's (immutable) array until hits.finish copies it.
func (e *entry) event() Event {
	return Event{
		Topic:              e.topic,
		Payload:            e.payload,
		PublishedAt:        fromNanos(e.pub),
		ReceivedAt:         fromNanos(e.recv),
		PublisherPID:       e.pid,
		PublisherUID:       e.uid,
		PublisherComponent: e.component,
		Final:              e.final,
		Metadata: Metadata{
			CorrelationID: e.corr.key,
			ParentID:      e.parent,
			RootID:        e.root.key,
			Sequence:      e.seqNo,
			Stage:         e.stageName(),
			SourceProcess: e.source,
			StartedAt:     fromNanos(e.started),
		},
	}
}

// hits are events copied out under the lock, with the tag postings to
// build their tag maps from (posting keys are immutable) once it is
// released, so a query holds the lock only for plain copies.
type hits struct {
	evs  []Event
	tags [][]*posting
}

func (h *hits) add(e *entry) {
	h.evs = append(h.evs, e.event())
	h.tags = append(h.tags, e.tags)
}

func hitsOf(es []*entry) hits {
	h := hits{evs: make([]Event, 0, len(es)), tags: make([][]*posting, 0, len(es))}
	for _, e := range es {
		h.add(e)
	}
	return h
}

// finish builds the tag maps and copies the payloads into one fresh
// buffer, so nothing returned aliases the history.
func (h *hits) finish() []Event {
	if len(h.evs) == 0 {
		return nil
	}
	total := 0
	for i := range h.evs {
		total += len(h.evs[i].Payload)
	}
	buf := make([]byte, 0, total)
	for i := range h.evs {
		ev := &h.evs[i]
		if p := ev.Payload; p != nil {
			start := len(buf)
			buf = append(buf, p...)
			ev.Payload = buf[start:len(buf):len(buf)]
		}
		if tags := h.tags[i]; len(tags) > 0 {
			ev.Metadata.Tags = make(map[string]string, len(tags))
			for _, p := range tags {
				k, v := p.tag()
				ev.Metadata.Tags[k] = v
			}
		}
	}
	return h.evs
}
