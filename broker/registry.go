package broker

import (
	"encoding/json"
	"maps"
	"sync"
	"time"
	"unicode/utf8"

	"daemoneye.dev/eventbus/wire"
)

// The collector registry (PROTOCOL.md §5.10). A connection whose HELLO
// declares capabilities, from a component the policy admitted, is a
// registered collector: the broker keeps an entry for it, watches its
// heartbeats, and publishes each change on the registry topics.

// Topics the broker publishes registry changes and health transitions on.
const (
	topicRegistration = "control.collector.registration"
	topicHealthStatus = "control.health.status"
)

// Capability limits, checked at HELLO.
const (
	maxCapabilityItems = 64
	maxCapabilityName  = 128
	maxAttributeValue  = 1024
)

// collector is one registered collector.
type collector struct {
	c            *conn
	caps         *wire.Capabilities
	registeredAt time.Time

	// Guarded by registry.mu.
	status     wire.CollectorStatus
	healthy    bool
	lastBeat   time.Time
	diagnostic map[string]string
	done       uint64 // replies it sent
	failed     uint64 // error replies it sent
}

// registry is the broker's registered collectors.
type registry struct {
	mu         sync.Mutex
	collectors map[*conn]*collector
}

// checkCapabilities applies the limits to caps.
func checkCapabilities(caps *wire.Capabilities) error {
	lists := [][]string{caps.EventTypes, caps.Operations}
	for _, l := range lists {
		if len(l) > maxCapabilityItems {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "capabilities: %d entries in a list, limit %d", len(l), maxCapabilityItems)
		}
		for _, s := range l {
			if s == "" || len(s) > maxCapabilityName {
				return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "capabilities: name of %d bytes, want 1-%d", len(s), maxCapabilityName)
			}
		}
	}
	switch {
	case len(caps.Priorities) > maxCapabilityItems || len(caps.Attributes) > maxCapabilityItems:
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "capabilities: more than %d priorities or attributes", maxCapabilityItems)
	case len(caps.Version) > maxCapabilityName:
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "capabilities: version of %d bytes, limit %d", len(caps.Version), maxCapabilityName)
	}
	for k, v := range caps.Attributes {
		if k == "" || len(k) > maxCapabilityName || len(v) > maxAttributeValue {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "capabilities: attribute %.32q: key 1-%d bytes, value up to %d", k, maxCapabilityName, maxAttributeValue)
		}
	}
	return nil
}

// register adds c, admitted with caps, to the registry and announces it.
func (b *Broker) register(c *conn, caps *wire.Capabilities) {
	now := time.Now()
	col := &collector{c: c, caps: caps, registeredAt: now, status: wire.CollectorStatus_COLLECTOR_STATUS_STARTING, healthy: true, lastBeat: now}
	b.registry.mu.Lock()
	if b.registry.collectors == nil {
		b.registry.collectors = make(map[*conn]*collector)
	}
	b.registry.collectors[c] = col
	info := col.infoLocked()
	b.registry.mu.Unlock()
	b.announce(topicRegistration, "registered", info)
}

// deregister removes c, closing, from the registry, announcing it unless
// it expired already.
func (b *Broker) deregister(c *conn, why string) {
	b.registry.mu.Lock()
	col := b.registry.collectors[c]
	delete(b.registry.collectors, c)
	var info *wire.CollectorInfo
	if col != nil {
		info = col.infoLocked()
	}
	b.registry.mu.Unlock()
	if col != nil {
		b.announce(topicRegistration, why, info)
		if why == "expired" {
			b.announce(topicHealthStatus, why, info)
		}
	}
}

// heartbeat records a HEARTBEAT from c.
func (c *conn) heartbeat(body []byte) error {
	var m wire.Heartbeat
	if err := m.UnmarshalVT(body); err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed HEARTBEAT: %v", err)
	}
	if err := wire.CheckUTF8(&m); err != nil {
		return err
	}
	if len(m.Diagnostics) > maxCapabilityItems {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "heartbeat: %d diagnostics, limit %d", len(m.Diagnostics), maxCapabilityItems)
	}
	for k, v := range m.Diagnostics {
		if len(k) > maxCapabilityName || len(v) > maxAttributeValue {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "heartbeat: diagnostic %.32q: key up to %d bytes, value up to %d", k, maxCapabilityName, maxAttributeValue)
		}
	}
	rg := &c.b.registry
	rg.mu.Lock()
	col := rg.collectors[c]
	if col == nil {
		rg.mu.Unlock()
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, "HEARTBEAT from a connection that did not register")
	}
	col.lastBeat = time.Now()
	changed := col.status != m.Status
	col.status, col.diagnostic = m.Status, m.Diagnostics
	recovered := !col.healthy
	col.healthy = true
	info := col.infoLocked()
	rg.mu.Unlock()
	switch {
	case recovered:
		c.b.announce(topicHealthStatus, "healthy", info)
		c.b.announce(topicRegistration, "healthy", info)
	case changed:
		c.b.announce(topicHealthStatus, "status", info)
	}
	return nil
}

// replied counts a reply a registered collector sent.
func (b *Broker) replied(c *conn, failed bool) {
	b.registry.mu.Lock()
	if col := b.registry.collectors[c]; col != nil {
		if failed {
			col.failed++
		} else {
			col.done++
		}
	}
	b.registry.mu.Unlock()
}

// checkHeartbeats marks collectors unhealthy after UnhealthyAfter missed
// beats and expires them, closing their connection, after ExpireAfter;
// the janitor calls it.
func (b *Broker) checkHeartbeats(now time.Time) {
	iv := b.cfg.HeartbeatInterval
	var unhealthy []*wire.CollectorInfo
	var expired []*conn
	b.registry.mu.Lock()
	for c, col := range b.registry.collectors {
		missed := int(now.Sub(col.lastBeat) / iv)
		switch {
		case missed >= b.cfg.ExpireAfter:
			expired = append(expired, c)
		case missed >= b.cfg.UnhealthyAfter && col.healthy:
			col.healthy = false
			unhealthy = append(unhealthy, col.infoLocked())
		}
	}
	b.registry.mu.Unlock()
	for _, info := range unhealthy {
		b.announce(topicHealthStatus, "unhealthy", info)
		b.announce(topicRegistration, "unhealthy", info)
	}
	for _, c := range expired {
		b.deregister(c, "expired")
		c.closeWith(CloseExpired, nil)
	}
}

// collectors lists the registry, for a registry query.
func (b *Broker) collectors() []*wire.CollectorInfo {
	b.registry.mu.Lock()
	defer b.registry.mu.Unlock()
	out := make([]*wire.CollectorInfo, 0, len(b.registry.collectors))
	for _, col := range b.registry.collectors {
		out = append(out, col.infoLocked())
	}
	return out
}

func (col *collector) infoLocked() *wire.CollectorInfo {
	c := col.c
	health := "healthy"
	if !col.healthy {
		health = "unhealthy"
	}
	return &wire.CollectorInfo{ConnectionId: c.id, Component: c.component, Pid: int32(c.peer.PID), Uid: c.peer.UID, Exe: c.peer.Exe,
		Capabilities: col.caps, Status: col.status, Health: health, RegisteredAt: col.registeredAt.UnixNano(),
		LastHeartbeat: col.lastBeat.UnixNano(), InFlight: uint32(max(c.inflight.Load(), 0)), Done: col.done, Failed: col.failed,
		Diagnostics: maps.Clone(col.diagnostic)}
}

// registryEvent is the JSON payload of a registry or health message.
type registryEvent struct {
	Event        string            `json:"event"`
	At           string            `json:"at"`
	ConnectionID uint64            `json:"connection_id"`
	Component    string            `json:"component"`
	PID          int32             `json:"pid"`
	UID          uint32            `json:"uid"`
	Exe          string            `json:"exe,omitempty"`
	Status       string            `json:"status"`
	Health       string            `json:"health"`
	EventTypes   []string          `json:"event_types,omitempty"`
	Operations   []string          `json:"operations,omitempty"`
	Version      string            `json:"version,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
}

// statusName is a collector status as events name it.
func statusName(s wire.CollectorStatus) string {
	switch s {
	case wire.CollectorStatus_COLLECTOR_STATUS_STARTING:
		return "starting"
	case wire.CollectorStatus_COLLECTOR_STATUS_READY:
		return "ready"
	case wire.CollectorStatus_COLLECTOR_STATUS_BUSY:
		return "busy"
	case wire.CollectorStatus_COLLECTOR_STATUS_DEGRADED:
		return "degraded"
	case wire.CollectorStatus_COLLECTOR_STATUS_STOPPING:
		return "stopping"
	}
	return "unknown"
}

// announce publishes event about info on topicName, as the broker.
func (b *Broker) announce(topicName, event string, info *wire.CollectorInfo) {
	e := registryEvent{Event: event, At: time.Now().UTC().Format(time.RFC3339Nano), ConnectionID: info.ConnectionId,
		Component: info.Component, PID: info.Pid, UID: info.Uid, Exe: info.Exe, Status: statusName(info.Status), Health: info.Health}
	if caps := info.Capabilities; caps != nil {
		e.EventTypes, e.Operations, e.Version, e.Attributes = caps.EventTypes, caps.Operations, caps.Version, caps.Attributes
	}
	payload, err := json.Marshal(e)
	if err != nil || !utf8.Valid(payload) {
		return
	}
	b.publishInternal(topicName, payload)
}
