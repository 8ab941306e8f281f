package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
)

// dialTimeout bounds connecting and the handshake; a local broker answers
// in microseconds, so a broker that takes longer is stuck.
const dialTimeout = 5 * time.Second

// dial connects to the broker at --socket for a one-shot tool: no
// reconnection, so a lost broker is an error rather than a wait. The
// client is named "eventbus-<command>" unless opts say otherwise.
func dial(ctx context.Context, cmd *cobra.Command, opts ...eventbus.ClientOption) (*eventbus.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	base := []eventbus.ClientOption{
		eventbus.WithReconnect(false),
		eventbus.WithName("eventbus-" + cmd.Name()),
	}
	return eventbus.Dial(ctx, socketPath(cmd), append(base, opts...)...)
}

// interrupted returns err, unless ctx was cancelled by SIGINT or SIGTERM,
// which err then merely reflects: nil if an interrupt is a normal end
// (ok), else an "interrupted" error.
func interrupted(ctx context.Context, err error, ok bool) error {
	switch {
	case err == nil || ctx.Err() == nil:
		return err
	case ok:
		return nil
	}
	return errors.New("interrupted")
}
