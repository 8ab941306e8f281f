package broker

import (
	"sync/atomic"

	"daemoneye.dev/eventbus/stats"
)

// limit is one resource limit a peer can run into (docs/SECURITY.md §7),
// named by its config key. Each enforcement is counted, and the counts
// are in the statistics.
type limit uint8

const (
	limitConnections limit = iota
	limitConnectionsPerUID
	limitReserved
	limitHandshakeEvicted
	limitHandshakeTimeout
	limitIdle
	limitSubscriptions
	limitSubscriptionsPerUID
	limitCorrelationRefBytes
	limitWaits
	limitWaitsPerUID
	limitQueryBytes
	limitQueryMemory
	limitPendingBytes
	limitLogLines
	limitWriteTimeout
	limitPendingRequests
	limitRequestBytes
	numLimits
)

var limitNames = [numLimits]string{
	"max_connections", "max_connections_per_uid", "reserved_connections", "max_connections (handshake evicted)",
	"handshake_timeout", "idle_timeout", "max_subscriptions", "max_subscriptions_per_uid", "max_correlation_bytes",
	"max_waits", "max_waits_per_uid", "max_query_bytes", "max_query_memory", "max_pending_bytes", "log_lines_per_second",
	"write_timeout", "max_pending_requests", "max_request_bytes",
}

// String returns the limit's config key.
func (l limit) String() string { return limitNames[l] }

// limitCounts counts each limit's enforcements.
type limitCounts [numLimits]atomic.Uint64

func (lc *limitCounts) hit(l limit) { lc[l].Add(1) }

// snapshot lists the limits enforced at least once.
func (lc *limitCounts) snapshot() []stats.LimitCount {
	out := []stats.LimitCount{}
	for l := range numLimits {
		if n := lc[l].Load(); n > 0 {
			out = append(out, stats.LimitCount{Limit: l.String(), Count: n})
		}
	}
	return out
}
