package eventbus

import (
	"context"
	"fmt"
	"maps"
	"time"

	"daemoneye.dev/eventbus/wire"
)

// Collector registration (docs/PROTOCOL.md §5.10). A client dialed with
// WithCapabilities registers, in its handshake, as a collector with the
// component it claims: the broker admits it only if the policy does. It
// then heartbeats on the interval the broker announced, reporting the
// status set with SetStatus; the broker marks a collector that stops
// unhealthy, then expires it, and announces each change on
// control.collector.registration and control.health.status.

// Capabilities are what a collector declares when it registers.
type Capabilities struct {
	EventTypes         []string // e.g. "process", "network"
	Operations         []string // the operations it serves
	MaxConcurrentTasks int
	Priorities         []int // the task priorities it accepts
	Version            string
	Attributes         map[string]string
}

func (c *Capabilities) toWire() *wire.Capabilities {
	w := &wire.Capabilities{EventTypes: c.EventTypes, Operations: c.Operations, MaxConcurrentTasks: uint32(max(c.MaxConcurrentTasks, 0)),
		Version: c.Version, Attributes: c.Attributes}
	for _, p := range c.Priorities {
		w.Priorities = append(w.Priorities, uint32(max(p, 0)))
	}
	return w
}

func capabilitiesFromWire(w *wire.Capabilities) Capabilities {
	if w == nil {
		return Capabilities{}
	}
	c := Capabilities{EventTypes: w.EventTypes, Operations: w.Operations, MaxConcurrentTasks: int(w.MaxConcurrentTasks), Version: w.Version,
		Attributes: w.Attributes}
	for _, p := range w.Priorities {
		c.Priorities = append(c.Priorities, int(p))
	}
	return c
}

// WithCapabilities registers the client as a collector with caps (see
// Capabilities); it needs WithComponent, a component the policy admits.
func WithCapabilities(caps Capabilities) ClientOption {
	caps.Attributes = maps.Clone(caps.Attributes)
	return func(o *clientOptions) { o.capabilities = caps.toWire() }
}

// CollectorStatus is what a collector says of itself.
type CollectorStatus int32

// Collector statuses.
const (
	StatusStarting = CollectorStatus(wire.CollectorStatus_COLLECTOR_STATUS_STARTING)
	StatusReady    = CollectorStatus(wire.CollectorStatus_COLLECTOR_STATUS_READY)
	StatusBusy     = CollectorStatus(wire.CollectorStatus_COLLECTOR_STATUS_BUSY)
	StatusDegraded = CollectorStatus(wire.CollectorStatus_COLLECTOR_STATUS_DEGRADED)
	StatusStopping = CollectorStatus(wire.CollectorStatus_COLLECTOR_STATUS_STOPPING)
)

// String is the status's name: starting, ready, busy, degraded, stopping.
func (s CollectorStatus) String() string {
	switch s {
	case StatusStarting:
		return "starting"
	case StatusReady:
		return "ready"
	case StatusBusy:
		return "busy"
	case StatusDegraded:
		return "degraded"
	case StatusStopping:
		return "stopping"
	}
	return "unknown"
}

// SetStatus sets the status and diagnostics the client's heartbeats
// report, and sends a heartbeat now. It fails if the client did not
// register (WithCapabilities).
func (c *Client) SetStatus(ctx context.Context, status CollectorStatus, diagnostics map[string]string) error {
	if c.opts.capabilities == nil {
		return fmt.Errorf("eventbus: set status: the client did not register (WithCapabilities)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.diagnostics = status, maps.Clone(diagnostics)
	if err := c.enqueueLocked(ctx, wire.TypeHeartbeat, c.heartbeatLocked(), true); err != nil {
		return fmt.Errorf("eventbus: set status: %w", err)
	}
	return nil
}

func (c *Client) heartbeatLocked() *wire.Heartbeat {
	return &wire.Heartbeat{Status: wire.CollectorStatus(c.status), Diagnostics: c.diagnostics}
}

// heartbeats sends a HEARTBEAT on cc every interval the broker announced,
// until the connection or the client ends.
func (c *Client) heartbeats(cc *clientConn) {
	defer c.wg.Done()
	t := time.NewTicker(time.Duration(cc.hello.HeartbeatIntervalMs) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-cc.done:
			return
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.conn == cc {
			c.appendHeartbeatLocked()
		}
		c.mu.Unlock()
	}
}

// appendHeartbeatLocked queues a heartbeat without waiting: a full
// buffer means the broker is not reading, and a heartbeat would not help.
func (c *Client) appendHeartbeatLocked() {
	if c.pending.Len() >= maxPendingWrite {
		return
	}
	wasEmpty := c.pending.Len() == 0
	c.appendLocked(wire.TypeHeartbeat, c.heartbeatLocked())
	if wasEmpty && !c.writeDirectLocked() {
		c.conn.signal()
	}
}

// CollectorInfo is one registered collector, as the broker's registry
// knows it.
type CollectorInfo struct {
	ConnectionID  uint64
	Component     string
	PID           int
	UID           uint32
	Exe           string
	Capabilities  Capabilities
	Status        CollectorStatus
	Healthy       bool
	RegisteredAt  time.Time
	LastHeartbeat time.Time
	// InFlight counts the requests it holds; Done and Failed the replies
	// it sent, without and with an error.
	InFlight     int
	Done, Failed uint64
	Diagnostics  map[string]string
}

// Collectors asks the broker for its registry; it is refused to an
// anonymous client.
func (c *Client) Collectors(ctx context.Context) ([]CollectorInfo, error) {
	res, err := c.query(ctx, &wire.Query{Kind: &wire.Query_Registry{Registry: &wire.RegistryQuery{}}})
	if err != nil {
		return nil, fmt.Errorf("eventbus: collectors: %w", err)
	}
	out := make([]CollectorInfo, 0, len(res.Collectors))
	for _, w := range res.Collectors {
		out = append(out, CollectorInfo{ConnectionID: w.ConnectionId, Component: w.Component, PID: int(w.Pid), UID: w.Uid, Exe: w.Exe,
			Capabilities: capabilitiesFromWire(w.Capabilities), Status: CollectorStatus(w.Status), Healthy: w.Health == "healthy",
			RegisteredAt: time.Unix(0, w.RegisteredAt), LastHeartbeat: time.Unix(0, w.LastHeartbeat), InFlight: int(w.InFlight),
			Done: w.Done, Failed: w.Failed, Diagnostics: w.Diagnostics})
	}
	return out, nil
}
