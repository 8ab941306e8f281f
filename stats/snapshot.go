package stats

import "time"

// Snapshot is the broker's statistics at one moment.
type Snapshot struct {
	StartedAt          time.Time       `json:"started_at"`
	TakenAt            time.Time       `json:"taken_at"`
	StatisticsEnabled  bool            `json:"statistics_enabled"`
	Published          uint64          `json:"published"`
	Delivered          uint64          `json:"delivered"`
	Dropped            uint64          `json:"dropped"`
	ProtocolErrors     uint64          `json:"protocol_errors"`
	Connections        int             `json:"connections"`
	MaxConnections     int             `json:"max_connections"`
	ConnectionsTotal   uint64          `json:"connections_total"`
	ConnectionsRefused uint64          `json:"connections_refused"`
	Topics             []TopicCount    `json:"topics"`
	PublishedUntracked uint64          `json:"published_untracked"`
	Patterns           []PatternCount  `json:"patterns"`
	ConnectionList     []Connection    `json:"connection_list"`
	DeliveryLatency    LatencySnapshot `json:"delivery_latency"`
	Denials            []DenialCount   `json:"denials"`
	// Limits is how often each resource limit was enforced, by its config
	// key; limits never reached are left out.
	Limits []LimitCount `json:"limits"`
	// RSSBytes is the broker process's resident set size where the OS
	// reports it (Linux), else 0; HeapBytes its Go heap in use.
	RSSBytes  uint64 `json:"rss_bytes"`
	HeapBytes uint64 `json:"heap_bytes"`
	// Epoch is the broker's epoch, drawn at random when it started: a
	// different epoch is a restarted broker.
	Epoch uint64 `json:"epoch"`
	// Requests counts requests and replies.
	Requests RequestCounts `json:"requests"`
}

// RequestCounts counts requests (docs/PROTOCOL.md §5.9): those waiting for
// a reply now, replies routed to their requester, replies dropped (late,
// a second one, or from a connection that did not hold the request),
// requests no responder took, and requests given to another queue group
// member after the one holding them went away.
type RequestCounts struct {
	Pending        uint64 `json:"pending"`
	Replies        uint64 `json:"replies"`
	RepliesDropped uint64 `json:"replies_dropped"`
	NoResponders   uint64 `json:"no_responders"`
	Redelivered    uint64 `json:"redelivered"`
	// GroupDuplicates counts publishes resent after their publisher
	// reconnected that a queue group had given to a member already, and
	// so gave to no other.
	GroupDuplicates uint64 `json:"group_duplicates"`
}

// LimitCount is how often one resource limit was enforced: a peer refused,
// a line suppressed, a result cut short.
type LimitCount struct {
	Limit string `json:"limit"`
	Count uint64 `json:"count"`
}

// DenialCount is how many operations the access policy refused for one
// component ("(anonymous)" for unregistered peers, "(refused)" for
// claims refused at hello).
type DenialCount struct {
	Component string `json:"component"`
	Count     uint64 `json:"count"`
}

// Uptime is how long the broker had run when the snapshot was taken.
func (s *Snapshot) Uptime() time.Duration { return s.TakenAt.Sub(s.StartedAt) }

// PatternCount is how many subscriptions hold one pattern.
type PatternCount struct {
	Pattern     string `json:"pattern"`
	Subscribers int    `json:"subscribers"`
}

// Connection is one client connection with its kernel-verified identity.
type Connection struct {
	ID             uint64    `json:"id"`
	ClientName     string    `json:"client_name"`
	Component      string    `json:"component,omitempty"`
	UID            uint32    `json:"uid"`
	GID            uint32    `json:"gid"`
	PID            int       `json:"pid"`
	SID            string    `json:"sid,omitempty"` // Windows: the peer's user SID; UID and GID are then 4294967295
	Exe            string    `json:"exe,omitempty"`
	Agent          bool      `json:"agent"`
	InProcess      bool      `json:"in_process"`
	ConnectedAt    time.Time `json:"connected_at"`
	Subscriptions  int       `json:"subscriptions"`
	Published      uint64    `json:"published"`
	Delivered      uint64    `json:"delivered"`
	Dropped        uint64    `json:"dropped"`
	QueuedMessages int       `json:"queued_messages"`
	QueuedBytes    int       `json:"queued_bytes"`
}
