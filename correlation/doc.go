// Package correlation carries correlation metadata between local processes
// and tracks correlated events in a bounded, indexed history of workflows.
//
// It is the library core of docs/CORRELATION.md:
//
//   - [Metadata] links a message to a correlation, its parent and its
//     workflow root; [New] and [Metadata.NewChild] make it with time-ordered
//     ids, [Metadata.Validate] enforces the limits (never truncating), and a
//     [Sequencer] numbers a publisher's messages per correlation.
//   - [Filter] selects messages by metadata; [Filter.Compile] validates it
//     and returns a [Compiled] filter whose Match does not allocate.
//   - [Tracker] records every correlated message the broker sees
//     ([Tracker.Record], or a [Recorder] per publisher, which skips the
//     work a repeat of its last metadata needs not redo), keeps workflows
//     keyed by root, answers history
//     queries (by tags, correlation, root, stage, time range; timelines;
//     workflow state) and lets a caller [Tracker.Wait] for a correlation's
//     results.
//
// # History, indexes and eviction
//
// The history is a ring of events in receive order, bounded by a count and
// a byte budget ([Config]). Events that agree on all metadata but the
// sequence, and on publisher and topic, share a meta: the receive numbers
// of its retained events, ascending, and its index keys. Each index
// (correlation id, root id, stage, tag key=value) maps a key to a posting:
// the metas with that key. So an event of a stream is recorded with one
// append, and the oldest event, always evicted first, is popped from the
// front of its meta in O(1); a meta left empty leaves its postings, and
// keys left without live metas are deleted, which keeps every index equal
// to a scan of the retained history. Queries merge the receive numbers of
// a posting's metas, so they never scan the history; receive times never
// decrease along the ring, so time bounds are binary searches. Small
// payloads are copied into blocks that are reused once their events are
// evicted, so a steady stream allocates nothing.
//
// Workflow state outlives the history's events: a workflow lives until it
// has been idle for Config.IdleTimeout (expired lazily by Record and the
// workflow queries, or by [Tracker.Expire]) or until MaxWorkflows pushes
// out the least recently active one.
//
// # Locking
//
// One mutex, Tracker.mu, guards the history, the indexes, the workflows and
// the waiters. Record holds it for constant work on a repeat of a meta,
// else for work proportional to the event's tags, plus any eviction; it
// never waits on anything else while holding it. Queries hold it only to
// find the events and copy their fields and payloads (whose blocks the
// history reuses); they build tag maps after releasing it. Wait holds it
// to register, to check its condition when woken and to unregister; it
// sleeps without it. Config.Now is called without the lock. The Sequencer
// has its own mutex and takes no other.
package correlation
