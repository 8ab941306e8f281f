// Package stats holds the broker's counters and latency histogram and the
// Snapshot type that reports them.
package stats
