package correlation

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxEvents    = 10000
	DefaultMaxBytes     = 64 << 20
	DefaultIdleTimeout  = time.Hour
	DefaultMaxWorkflows = 1024
	DefaultMaxWaiters   = 1024
)

var (
	// ErrClosed: the tracker was closed; Record and Wait refuse.
	ErrClosed = errors.New("correlation: tracker closed")
	// ErrEventTooLarge: one event alone exceeds the history's byte limit.
	ErrEventTooLarge = errors.New("correlation: event too large for the history")
	// ErrTooManyWaiters: Config.MaxWaiters Wait calls are in progress.
	ErrTooManyWaiters = errors.New("correlation: too many waiters")
)

// Config bounds a Tracker. Zero fields take the defaults; negative ones are
// invalid.
type Config struct {
	// MaxEvents is the most events the history keeps (default 10,000).
	MaxEvents int
	// MaxBytes is the most bytes the history keeps, counted by Event.Size
	// (default 64 MiB).
	MaxBytes int64
	// IdleTimeout is how long a workflow lives without a new event before
	// it expires (default 1 hour). Its events stay in the history.
	IdleTimeout time.Duration
	// MaxWorkflows is the most workflows tracked at once; past it the least
	// recently active one is dropped (default 1024).
	MaxWorkflows int
	// MaxWaiters is the most Wait calls in progress at once; each keeps up
	// to MaxEvents event copies (default 1024).
	MaxWaiters int
	// Now is the clock for expiry and for events without ReceivedAt
	// (default time.Now). It is called without the tracker's lock held.
	Now func() time.Time
	// NewTimer makes the timer of a Wait for a quiet period (default: a
	// *time.Timer). A test sets it, with Now, to a fake clock.
	NewTimer func(d time.Duration) Timer
}

// Timer is a timer a Wait re-arms each time an event arrives: what
// *time.Timer does, with its channel behind a method.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Reset re-arms the timer to fire after d.
	Reset(d time.Duration) bool
	// Stop disarms the timer.
	Stop() bool
}

// realTimer is the default Timer.
type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
func (r realTimer) Stop() bool                 { return r.t.Stop() }

func (c Config) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"config max events", int64(c.MaxEvents)},
		{"config max bytes", c.MaxBytes},
		{"config idle timeout", int64(c.IdleTimeout)},
		{"config max workflows", int64(c.MaxWorkflows)},
		{"config max waiters", int64(c.MaxWaiters)},
	} {
		if f.v < 0 {
			return invalid(f.name, fmt.Sprintf("negative: %d", f.v))
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	// entry.size is an int32.
	c.MaxBytes = min(c.MaxBytes, math.MaxInt32)
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxWorkflows == 0 {
		c.MaxWorkflows = DefaultMaxWorkflows
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = DefaultMaxWaiters
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewTimer == nil {
		c.NewTimer = func(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }
	}
	return c
}

// Tracker records correlated events in a bounded history with indexes,
// keeps workflow state by root, answers queries and wakes waiters. It is
// safe for concurrent use. See the package doc for its lock.
type Tracker struct {
	cfg Config

	// What Record touches for every event comes first, so that it spans
	// few cache lines.
	mu       sync.Mutex
	ring     []entry // circular history, oldest at ring[head]; grows up to MaxEvents
	head     int
	n        int    // events retained
	first    uint64 // receive number of ring[head]; numbers never repeat
	bytes    int64  // Size of the retained events
	lastRecv int64  // receive times never decrease (see Record)
	idleFrom int64  // no workflow was last active before; see expireLocked
	nwait    int    // waiters in all of waiters
	closed   bool
	payloads payloadBlocks // where keepPayload copies small payloads
	counts   Stats         // the cumulative counters

	byCorr   map[string]*corrPosting
	byRoot   map[string]*posting
	byStage  map[string]*posting
	byTag    map[string]*posting  // by tagIndexKey
	keyBuf   []byte               // scratch for tagIndexKey
	tagBuf   []*posting           // scratch for tagPostingsLocked
	strs     map[string]string    // intern table, see internLocked
	flows    map[string]*workflow // by root id
	activity list.List            // *workflow, least recently active first
	waiters  map[string][]*waiter // by correlation id
}

// NewTracker returns a tracker bounded by cfg, which is copied.
func NewTracker(cfg Config) (*Tracker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Tracker{
		cfg:     cfg.withDefaults(),
		byCorr:  make(map[string]*corrPosting),
		byRoot:  make(map[string]*posting),
		byStage: make(map[string]*posting),
		byTag:   make(map[string]*posting),
		strs:    make(map[string]string),
		flows:   make(map[string]*workflow),
		waiters: make(map[string][]*waiter),
	}, nil
}

// Record adds ev to the history and its workflow and wakes the waiters on
// its correlation id, evicting the oldest events past the limits. It copies
// the payload and tags; the caller may reuse them. It validates the
// metadata (ErrInvalid) and refuses an event larger than MaxBytes
// (ErrEventTooLarge).
//
// Receive order is the order of Record calls. A ReceivedAt earlier than the
// previous event's is raised to it, so that history order and time order
// agree (the broker's readers stamp times per read, so skew is tiny).
func (t *Tracker) Record(ev Event) error {
	r := Recorder{t: t}
	if err := r.Check(&ev, false); err != nil {
		return err
	}
	recv := t.receivedAt(&ev)
	t.mu.Lock()
	_, err := t.recordLocked(&ev, recv, &r)
	t.mu.Unlock()
	return err
}

// Recorder records one publisher's events, as the broker's reader for one
// connection does. A publisher usually sends many events with the same
// metadata but the sequence number; the Recorder remembers the meta (see
// meta) the last one recorded shares, with its validation, index postings
// and workflow entries, so that a repeat skips all of that. It is not safe
// for concurrent use; several Recorders may share a Tracker.
type Recorder struct {
	t *Tracker

	// What Check accepted, for the Record that follows it.
	checked  bool
	repeat   bool
	size     int64
	tagBytes int

	// What the last event recorded resolved to; valid says it did.
	valid       bool
	recTagBytes int
	meta        *meta     // may since have died
	topic, comp string    // the caller's, equal to meta's: same pointers compare fastest
	flow        *workflow // meta's workflow, if still tracked (elem != nil)
	states      tracked   // meta's entries in flow
}

// NewRecorder returns a Recorder for t.
func (t *Tracker) NewRecorder() *Recorder { return &Recorder{t: t} }

// Check returns the error Record would refuse ev with, but ErrClosed:
// invalid metadata (ErrInvalid) or an event too large (ErrEventTooLarge).
// The broker checks before it delivers a message and records it after.
//
// repeat tells that ev.Metadata is equal, but for Sequence, to the
// metadata of the last event this Recorder recorded; Check then trusts the
// validation that metadata passed, and Record reuses the index postings
// and workflow entries it resolved to where they are still current. A
// caller that cannot tell passes false.
func (r *Recorder) Check(ev *Event, repeat bool) error {
	r.checked = false
	repeat = repeat && r.valid
	tagBytes := r.recTagBytes
	if !repeat {
		var err error
		if tagBytes, err = checkMetadata(&ev.Metadata); err != nil {
			return err
		}
	}
	size := ev.size(tagBytes)
	if size > r.t.cfg.MaxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrEventTooLarge, size, r.t.cfg.MaxBytes)
	}
	r.checked, r.repeat, r.size, r.tagBytes = true, repeat, size, tagBytes
	return nil
}

// Record is Tracker.Record. If the Recorder's last call was a Check that
// accepted ev, it does not check ev again; else it checks it as
// Check(ev, false) does.
func (r *Recorder) Record(ev *Event) error {
	if !r.checked {
		if err := r.Check(ev, false); err != nil {
			return err
		}
	}
	r.checked = false
	t := r.t
	recv := t.receivedAt(ev)
	// No defer: this is the broker's per-message path, and nothing under
	// the lock can panic on input Check accepted.
	t.mu.Lock()
	resolved, err := t.recordLocked(ev, recv, r)
	t.mu.Unlock()
	if resolved {
		// The caller's own strings, which its repeats usually pass again:
		// the very same string compares fastest. Tracker.Record does not
		// keep them, so that its event does not escape.
		r.topic, r.comp = ev.Topic, ev.PublisherComponent
	}
	return err
}

// receivedAt returns ev.ReceivedAt, or now if zero, in Unix nanoseconds.
// It calls Config.Now, so not with the lock held.
func (t *Tracker) receivedAt(ev *Event) int64 {
	if ev.ReceivedAt.IsZero() {
		return nanos(t.cfg.Now())
	}
	return ev.ReceivedAt.UnixNano()
}

// recordLocked records ev, which Check accepted, as r, and reports whether
// it resolved r.meta anew.
func (t *Tracker) recordLocked(ev *Event, recv int64, r *Recorder) (resolved bool, err error) {
	if t.closed {
		r.valid, r.meta = false, nil
		return false, ErrClosed
	}
	recv = max(recv, t.lastRecv)
	t.lastRecv = recv
	for t.n >= t.cfg.MaxEvents || t.bytes+r.size > t.cfg.MaxBytes {
		t.evictOldestLocked()
	}
	// After eviction, which may have killed r.meta.
	m := r.meta
	if !r.repeat || m == nil || !m.live() || !r.sends(m, ev) {
		m, resolved = t.metaLocked(ev), true
		if m != r.meta {
			r.meta, r.flow, r.states = m, nil, tracked{}
		}
	}
	e := t.appendLocked(ev, recv, r.size, m)
	// Expire first: an idle workflow would already be gone had it been
	// expired eagerly, so a late event starts a new one.
	t.expireLocked(recv)
	t.trackLocked(e, r)
	if t.nwait > 0 {
		t.notifyLocked(e)
	}
	r.valid, r.recTagBytes = true, r.tagBytes
	return resolved, nil
}

// sends is m.sends(ev) for r's meta m, comparing ev's strings with the
// caller's last ones, which are usually the very same.
func (r *Recorder) sends(m *meta, ev *Event) bool {
	return ev.Topic == r.topic && ev.PublisherComponent == r.comp &&
		m.pid == ev.PublisherPID && m.uid == ev.PublisherUID
}

// A correlation's latest metas that metaLocked tries before it makes a
// new one: metaScan, and of those, metaTries of ev's publisher and topic.
// A few publishers may share a correlation, or one may alternate topics
// or a few tag sets; past that, its metadata likely varies by event.
const (
	metaScan  = 16
	metaTries = 4
)

// metaLocked returns the live meta ev shares, making it if needed. It
// resolves the tag postings first (usually the correlation's last ones),
// so that comparing a meta's tags takes no map lookups.
func (t *Tracker) metaLocked(ev *Event) *meta {
	md := &ev.Metadata
	c := t.byCorr[md.CorrelationID]
	if c == nil {
		c = &corrPosting{posting: posting{key: strings.Clone(md.CorrelationID)}}
		t.byCorr[c.key] = c
	}
	tags, shared := t.tagPostingsLocked(c, md.Tags)
	started, tries := nanos(md.StartedAt), metaTries
	for i := len(c.metas) - 1; i >= max(0, len(c.metas)-metaScan) && tries > 0; i-- {
		m := c.metas[i]
		if !m.live() || !m.sends(ev) {
			continue
		}
		if m.matches(md, started, tags) {
			c.tags = m.tags
			return m
		}
		tries--
	}
	if !shared {
		tags = slices.Clone(tags)
	}
	c.tags = tags
	m := &meta{
		corr:      c,
		root:      index(t.byRoot, md.RootID),
		tags:      tags,
		parent:    t.parentLocked(c, md.ParentID),
		source:    t.internLocked(md.SourceProcess),
		topic:     t.internLocked(ev.Topic),
		component: t.internLocked(ev.PublisherComponent),
		started:   started,
		pid:       ev.PublisherPID,
		uid:       ev.PublisherUID,
	}
	m.ids.arr = m.first[:0]
	if md.Stage != "" {
		m.stage = index(t.byStage, md.Stage)
		m.stage.add(m)
	}
	c.add(m)
	m.root.add(m)
	for _, p := range m.tags {
		p.add(m)
	}
	return m
}

// appendLocked stores ev, which shares m, at the tail.
func (t *Tracker) appendLocked(ev *Event, recv, size int64, m *meta) *entry {
	if t.n == len(t.ring) {
		t.growLocked()
	}
	m.ids.add(t.first + uint64(t.n))
	// Field by field: a composite literal is built on the stack and then
	// copied, which stalls on store forwarding.
	e := t.slot(t.n)
	e.recv, e.pub, e.seqNo = recv, nanos(ev.PublishedAt), ev.Metadata.Sequence
	e.payload, e.meta = t.keepPayloadLocked(ev.Payload), m
	e.size, e.final = int32(size), ev.Final
	t.n++
	t.bytes += size
	t.counts.Recorded++
	return e
}

// Small payloads are copied into shared blocks of payloadBlock bytes: one
// allocation serves many events, and once the history has evicted every
// event of a block, the block is reused, so a steady stream allocates
// nothing. Nothing reads a payload in the history without the lock (hits
// copy them), so a block may be overwritten once its events are gone.
const (
	payloadBlock      = 64 << 10
	maxBlockedPayload = 4 << 10
)

type payloadBlocks struct {
	cur  []byte        // the block being filled
	full []filledBlock // oldest first
}

type filledBlock struct {
	buf  []byte
	last uint64 // receive number of the last event that may be in buf
}

// keepPayloadLocked returns the history's copy of p, for the event with
// the next receive number.
func (t *Tracker) keepPayloadLocked(p []byte) []byte {
	if p == nil || len(p) > maxBlockedPayload {
		return bytes.Clone(p)
	}
	b := &t.payloads
	if b.cur == nil || cap(b.cur)-len(b.cur) < len(p) { // nil: keep empty apart from nil
		b.cur = t.nextBlockLocked()
	}
	n, end := len(b.cur), len(b.cur)+len(p)
	b.cur = b.cur[:end] // only the length changes: no write barrier
	copy(b.cur[n:], p)
	return b.cur[n:end:end]
}

// nextBlockLocked retires the current block and returns an empty one: the
// oldest filled block if its events are all evicted, else a new one.
// Other free blocks are dropped, since the history has shrunk.
func (t *Tracker) nextBlockLocked() []byte {
	b := &t.payloads
	if b.cur != nil {
		b.full = append(b.full, filledBlock{b.cur, t.first + uint64(t.n) - 1})
	}
	var next []byte
	for len(b.full) > 0 && b.full[0].last < t.first {
		if next == nil {
			next = b.full[0].buf[:0]
		}
		b.full[0] = filledBlock{}
		b.full = b.full[1:]
	}
	if next == nil {
		next = make([]byte, 0, payloadBlock)
	}
	return next
}

// growLocked doubles the ring (up to MaxEvents), oldest event first.
func (t *Tracker) growLocked() {
	ring := make([]entry, min(max(2*len(t.ring), 64), t.cfg.MaxEvents))
	for i := range t.n {
		ring[i] = t.ring[(t.head+i)%len(t.ring)]
	}
	t.ring, t.head = ring, 0
}

// slot returns the i-th retained event, oldest first (i < len(t.ring)).
func (t *Tracker) slot(i int) *entry {
	if i += t.head; i >= len(t.ring) {
		i -= len(t.ring)
	}
	return &t.ring[i]
}

// at returns the retained event with receive number seq.
func (t *Tracker) at(seq uint64) *entry { return t.slot(int(seq - t.first)) }

// evictOldestLocked drops the oldest event. It is at the front of its
// meta's ids, so it goes in O(1); a meta it leaves empty leaves the
// indexes, which drop keys left empty.
func (t *Tracker) evictOldestLocked() {
	e := &t.ring[t.head]
	if m := e.meta; m.ids.pop() {
		t.killLocked(m)
	}
	t.bytes -= int64(e.size)
	*e = entry{} // release the payload and meta
	if t.head++; t.head == len(t.ring) {
		t.head = 0
	}
	t.first++
	t.n--
	t.counts.Evicted++
}

// killLocked counts m, whose last event was evicted, out of its postings.
func (t *Tracker) killLocked(m *meta) {
	if m.corr.kill() {
		delete(t.byCorr, m.corr.key)
	}
	if m.root.kill() {
		delete(t.byRoot, m.root.key)
	}
	if m.stage != nil && m.stage.kill() {
		delete(t.byStage, m.stage.key)
	}
	for _, p := range m.tags {
		if p.kill() {
			delete(t.byTag, p.key)
		}
	}
}

// maxInterned bounds the intern table. Topics, components and source
// names are few; past the bound new strings are copied, not shared.
const maxInterned = 4096

// internLocked returns a copy of s shared with equal strings in the history,
// so the history never pins a caller's buffer and stores repeats once.
func (t *Tracker) internLocked(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := t.strs[s]; ok {
		return v
	}
	c := strings.Clone(s)
	if len(t.strs) < maxInterned {
		t.strs[c] = c
	}
	return c
}

// parentLocked shares a parent id with its correlation's index key when
// the parent's events are retained, as they usually are; c remembers it
// for the correlation's next meta.
func (t *Tracker) parentLocked(c *corrPosting, id string) string {
	switch {
	case id == "":
		return ""
	case id == c.parent:
		return c.parent
	}
	if p := t.byCorr[id]; p != nil {
		c.parent = p.key
	} else {
		c.parent = strings.Clone(id)
	}
	return c.parent
}

// index returns the posting of key, creating it with a copy of key so the
// index never pins a caller's buffer.
func index(idx map[string]*posting, key string) *posting {
	p := idx[key]
	if p == nil {
		p = &posting{key: strings.Clone(key)}
		idx[p.key] = p
	}
	return p
}

// tagPostingsLocked returns the postings of tags: the correlation's last
// ones if tags repeat them (shared is true), else looked up, or made and
// left empty for the caller to fill, into t.tagBuf.
func (t *Tracker) tagPostingsLocked(c *corrPosting, tags map[string]string) (ps []*posting, shared bool) {
	if len(tags) == 0 {
		return nil, true
	}
	if allIndexed(c.tags) && sameTags(c.tags, tags) {
		return c.tags, true
	}
	ps = t.tagBuf[:0]
	for k, v := range tags {
		t.keyBuf = tagIndexKey(t.keyBuf, k, v)
		p := t.byTag[string(t.keyBuf)] // the compiler does not allocate here
		if p == nil {
			p = &posting{key: string(t.keyBuf)}
			t.byTag[p.key] = p
		}
		ps = append(ps, p)
	}
	t.tagBuf = ps
	return ps, false
}

// allIndexed reports whether every posting of ps is still in its index.
func allIndexed(ps []*posting) bool {
	for _, p := range ps {
		if p.live() == 0 {
			return false
		}
	}
	return true
}

// Stats are the tracker's sizes and cumulative counters.
type Stats struct {
	Events           int    // events in the history
	Bytes            int64  // their Size
	Recorded         uint64 // events ever recorded
	Evicted          uint64 // events evicted from the history
	Workflows        int    // workflows tracked
	WorkflowsExpired uint64 // workflows dropped after IdleTimeout
	WorkflowsEvicted uint64 // workflows dropped at MaxWorkflows
	Waiters          int    // Wait calls in progress
}

// Stats returns the current sizes and counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.counts
	s.Events, s.Bytes, s.Workflows, s.Waiters = t.n, t.bytes, len(t.flows), t.nwait
	return s
}

// Config returns the tracker's effective configuration.
func (t *Tracker) Config() Config { return t.cfg }

// Close makes Record and Wait refuse with ErrClosed and ends every Wait in
// progress with its partial results. Queries keep working.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, ws := range t.waiters {
		for _, w := range ws {
			w.signal()
		}
	}
}
