package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Lifecycle control (docs/PROTOCOL.md §5.11): the agent sends an operation
// to a named collector as a request on control.collector.lifecycle,
// directed to that component (To); the collector serves it with
// ServeLifecycle. The topic is privileged: only the agent may send.

// LifecycleTopic carries lifecycle requests.
const LifecycleTopic = "control.collector.lifecycle"

// LifecycleOp is a lifecycle operation.
type LifecycleOp string

// Lifecycle operations.
const (
	OpStart           LifecycleOp = "start"
	OpStop            LifecycleOp = "stop"
	OpRestart         LifecycleOp = "restart"
	OpPause           LifecycleOp = "pause"
	OpResume          LifecycleOp = "resume"
	OpShutdown        LifecycleOp = "shutdown"
	OpUpdateConfig    LifecycleOp = "update-config"
	OpGetCapabilities LifecycleOp = "get-capabilities"
	OpHealthCheck     LifecycleOp = "health-check"
)

// LifecycleOps lists every operation, in the order of the constants.
var LifecycleOps = []LifecycleOp{OpStart, OpStop, OpRestart, OpPause, OpResume, OpShutdown, OpUpdateConfig, OpGetCapabilities, OpHealthCheck}

// ErrUnsupportedOperation, returned by a LifecycleHandler, answers that the
// collector does not serve the operation.
var ErrUnsupportedOperation = errors.New("eventbus: operation not supported")

// LifecycleHandler performs op with its argument (update-config's new
// configuration, for instance) and returns the reply's payload. An error
// is sent as a *ReplyError: code "unsupported" for ErrUnsupportedOperation,
// "failed" otherwise. It runs on the client's reader goroutine, as a
// SubscribeFunc handler does.
type LifecycleHandler func(ctx context.Context, op LifecycleOp, argument []byte) ([]byte, error)

// lifecycleRequest is a lifecycle request's payload.
type lifecycleRequest struct {
	Operation LifecycleOp `json:"operation"`
	Argument  []byte      `json:"argument,omitempty"`
}

// healthReply is health-check's answer.
type healthReply struct {
	Status      string            `json:"status"`
	Diagnostics map[string]string `json:"diagnostics,omitempty"`
}

// ServeLifecycle answers the lifecycle requests sent to this client's
// component. get-capabilities and health-check are answered by the
// library (the registered capabilities; the status and diagnostics of
// SetStatus) unless handler serves them; handler serves the rest.
func (c *Client) ServeLifecycle(ctx context.Context, handler LifecycleHandler) (*Subscription, error) {
	if c.opts.component == "" {
		return nil, fmt.Errorf("eventbus: serve lifecycle: the client claims no component (WithComponent)")
	}
	return c.SubscribeWith(ctx, SubscribeOptions{Patterns: []string{LifecycleTopic}, Responder: true, Handler: func(m *Message) {
		if !m.CanReply() {
			return
		}
		rctx := context.Background()
		var req lifecycleRequest
		if err := json.Unmarshal(m.Payload, &req); err != nil {
			m.ReplyWithError(rctx, &ReplyError{Code: "bad_request", Message: err.Error(), Category: "client"})
			return
		}
		out, err := handler(rctx, req.Operation, req.Argument)
		if errors.Is(err, ErrUnsupportedOperation) {
			out, err = c.builtinLifecycle(req.Operation)
		}
		switch {
		case errors.Is(err, ErrUnsupportedOperation):
			m.ReplyWithError(rctx, &ReplyError{Code: "unsupported", Message: fmt.Sprintf("operation %q not supported", req.Operation), Category: "client"})
		case err != nil:
			m.ReplyWithError(rctx, &ReplyError{Code: "failed", Message: err.Error(), Category: "collector"})
		default:
			m.Reply(rctx, out)
		}
	}})
}

// builtinLifecycle answers the operations the library knows.
func (c *Client) builtinLifecycle(op LifecycleOp) ([]byte, error) {
	switch op {
	case OpGetCapabilities:
		var caps Capabilities
		if c.opts.capabilities != nil {
			caps = capabilitiesFromWire(c.opts.capabilities)
		}
		return json.Marshal(caps)
	case OpHealthCheck:
		c.mu.Lock()
		h := healthReply{Status: c.status.String(), Diagnostics: c.diagnostics}
		c.mu.Unlock()
		return json.Marshal(h)
	}
	return nil, ErrUnsupportedOperation
}

// Control sends op, with argument, to the collector component collector
// and returns its reply; only the agent may (the topic is privileged).
// Errors are Request's: ErrNoResponders when no such collector serves
// lifecycle requests, a *ReplyError when it refused or failed.
func (c *Client) Control(ctx context.Context, collector string, op LifecycleOp, argument []byte) ([]byte, error) {
	payload, err := json.Marshal(lifecycleRequest{Operation: op, Argument: argument})
	if err != nil {
		return nil, err
	}
	m, err := c.Request(ctx, LifecycleTopic, payload, To(collector))
	if err != nil {
		return nil, err
	}
	return m.Payload, nil
}
