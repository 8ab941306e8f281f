package wireconv

import (
	"time"

	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/wire"
)

// StatsToWire converts a statistics snapshot for sending.
func StatsToWire(s *stats.Snapshot) *wire.Stats {
	w := &wire.Stats{
		StartedAt:          s.StartedAt.UnixNano(),
		TakenAt:            s.TakenAt.UnixNano(),
		StatisticsEnabled:  s.StatisticsEnabled,
		Published:          s.Published,
		Delivered:          s.Delivered,
		Dropped:            s.Dropped,
		ProtocolErrors:     s.ProtocolErrors,
		Connections:        uint32(s.Connections),
		MaxConnections:     uint32(s.MaxConnections),
		ConnectionsTotal:   s.ConnectionsTotal,
		ConnectionsRefused: s.ConnectionsRefused,
		PublishedUntracked: s.PublishedUntracked,
		DeliveryLatency: &wire.Latency{
			Count: s.DeliveryLatency.Count, P50Ns: int64(s.DeliveryLatency.P50), P90Ns: int64(s.DeliveryLatency.P90),
			P99Ns: int64(s.DeliveryLatency.P99), P999Ns: int64(s.DeliveryLatency.P999), MaxNs: int64(s.DeliveryLatency.Max),
		},
	}
	for _, t := range s.Topics {
		w.Topics = append(w.Topics, &wire.TopicStats{Topic: t.Topic, Published: t.Published})
	}
	for _, d := range s.Denials {
		w.Denials = append(w.Denials, &wire.DenialStats{Component: d.Component, Count: d.Count})
	}
	for _, l := range s.Limits {
		w.Limits = append(w.Limits, &wire.LimitStats{Limit: l.Limit, Count: l.Count})
	}
	w.RssBytes, w.HeapBytes, w.Epoch = s.RSSBytes, s.HeapBytes, s.Epoch
	r := s.Requests
	w.Requests = &wire.RequestStats{Pending: r.Pending, Replies: r.Replies, RepliesDropped: r.RepliesDropped, NoResponders: r.NoResponders, Redelivered: r.Redelivered, GroupDuplicates: r.GroupDuplicates}
	for _, p := range s.Patterns {
		w.Patterns = append(w.Patterns, &wire.PatternStats{Pattern: p.Pattern, Subscribers: uint32(p.Subscribers)})
	}
	for _, c := range s.ConnectionList {
		w.ConnectionList = append(w.ConnectionList, &wire.ConnectionStats{
			Id: c.ID, ClientName: c.ClientName, Component: c.Component, Uid: c.UID, Gid: c.GID, Pid: int32(c.PID),
			InProcess: c.InProcess, Exe: c.Exe, Agent: c.Agent, Sid: c.SID, ConnectedAt: c.ConnectedAt.UnixNano(), Subscriptions: uint32(c.Subscriptions),
			Published: c.Published, Delivered: c.Delivered, Dropped: c.Dropped,
			QueuedMessages: uint64(c.QueuedMessages), QueuedBytes: uint64(c.QueuedBytes),
		})
	}
	return w
}

// StatsFromWire converts received statistics.
func StatsFromWire(w *wire.Stats) stats.Snapshot {
	s := stats.Snapshot{
		StartedAt:          time.Unix(0, w.StartedAt),
		TakenAt:            time.Unix(0, w.TakenAt),
		StatisticsEnabled:  w.StatisticsEnabled,
		Published:          w.Published,
		Delivered:          w.Delivered,
		Dropped:            w.Dropped,
		ProtocolErrors:     w.ProtocolErrors,
		Connections:        int(w.Connections),
		MaxConnections:     int(w.MaxConnections),
		ConnectionsTotal:   w.ConnectionsTotal,
		ConnectionsRefused: w.ConnectionsRefused,
		PublishedUntracked: w.PublishedUntracked,
		Topics:             []stats.TopicCount{},
		Patterns:           []stats.PatternCount{},
		ConnectionList:     []stats.Connection{},
		Denials:            []stats.DenialCount{},
	}
	if l := w.DeliveryLatency; l != nil {
		s.DeliveryLatency = stats.LatencySnapshot{Count: l.Count, P50: time.Duration(l.P50Ns), P90: time.Duration(l.P90Ns),
			P99: time.Duration(l.P99Ns), P999: time.Duration(l.P999Ns), Max: time.Duration(l.MaxNs)}
	}
	for _, t := range w.Topics {
		s.Topics = append(s.Topics, stats.TopicCount{Topic: t.Topic, Published: t.Published})
	}
	for _, d := range w.Denials {
		s.Denials = append(s.Denials, stats.DenialCount{Component: d.Component, Count: d.Count})
	}
	s.Limits = []stats.LimitCount{}
	for _, l := range w.Limits {
		s.Limits = append(s.Limits, stats.LimitCount{Limit: l.Limit, Count: l.Count})
	}
	s.RSSBytes, s.HeapBytes, s.Epoch = w.RssBytes, w.HeapBytes, w.Epoch
	if r := w.Requests; r != nil {
		s.Requests = stats.RequestCounts{Pending: r.Pending, Replies: r.Replies, RepliesDropped: r.RepliesDropped, NoResponders: r.NoResponders, Redelivered: r.Redelivered, GroupDuplicates: r.GroupDuplicates}
	}
	for _, p := range w.Patterns {
		s.Patterns = append(s.Patterns, stats.PatternCount{Pattern: p.Pattern, Subscribers: int(p.Subscribers)})
	}
	for _, c := range w.ConnectionList {
		s.ConnectionList = append(s.ConnectionList, stats.Connection{
			ID: c.Id, ClientName: c.ClientName, Component: c.Component, UID: c.Uid, GID: c.Gid, PID: int(c.Pid),
			InProcess: c.InProcess, Exe: c.Exe, Agent: c.Agent, SID: c.Sid, ConnectedAt: time.Unix(0, c.ConnectedAt), Subscriptions: int(c.Subscriptions),
			Published: c.Published, Delivered: c.Delivered, Dropped: c.Dropped,
			QueuedMessages: int(c.QueuedMessages), QueuedBytes: int(c.QueuedBytes),
		})
	}
	return s
}
