// Package topic validates topics and patterns and matches them, with a trie
// index shared by routing and access control.
//
// The rules are those of docs/TOPICS.md §1:
//
//   - A topic is 1 to [MaxSegments] dot-separated segments and at most
//     [MaxTopicBytes] bytes. A segment is 1 to [MaxSegmentBytes] bytes of
//     a-z 0-9 - _.
//   - A topic whose first byte is '$' (such as "$sys.stats") is reserved for
//     the broker; [IsReserved] reports it and the broker refuses client
//     publishes to it. '$' may appear nowhere else.
//   - A pattern may also use the whole-segment wildcards '+' (exactly one
//     segment) and '#' (zero or more segments, last segment only). '*' is not
//     a wildcard.
//   - A pattern whose first segment is a wildcard never matches a reserved
//     topic, so "#" matches everything except "$..." topics.
//
// [Match] is the plain reference matcher. [Index] finds every value whose
// pattern matches a topic with one trie walk and caches results; it is fuzzed
// against [Match].
package topic
