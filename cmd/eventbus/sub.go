package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/topic"
)

type subFlags struct {
	count       int
	timeout     time.Duration
	json        bool
	noReconnect bool
	group       string
	strategy    string
	id          identityFlags
}

func newSubCmd() *cobra.Command {
	var f subFlags
	cmd := &cobra.Command{
		Use:   "sub [flags] PATTERN...",
		Short: "print messages matching patterns",
		Long: `Subscribe to the patterns and print each message on one line: the topic,
a space and the payload. A payload that is not printable UTF-8 text is
printed Go-quoted. With --json, print one JSON object per message instead;
a message with correlation metadata has a "correlation" object
(correlation_id, parent_id if any, root_id, sequence, stage,
source_process, tags, started_at) and, if it is a publisher's final
result, "final": true.

When the broker or this client dropped messages, "# missed N messages" is
printed on standard error before the next message.

--as COMPONENT claims a component of the broker's policy (see pub --help).
The broker refuses a pattern under which nothing may be delivered to this
client (exit 1), and checks every delivery of a pattern that matches both
allowed and restricted topics: an anonymous sub '#' receives only public
topics.

If the connection to the broker is lost, sub says so on standard error,
reconnects with backoff and subscribes again, and says what it missed: when
the broker it finds is a new one (another epoch: the broker restarted),
messages published while no broker ran were not delivered; when it is the
same broker, messages published while sub had no connection were not
delivered to it. Neither is counted anywhere. --no-reconnect makes a lost
connection exit 1 instead.

--group NAME makes sub one member of a queue group: each message the
group's members match goes to one of them, chosen by --strategy, which the
group's first member sets.

sub exits 0 after --count messages (or on Ctrl-C without --count), and 1 if
--timeout passes first.`,
		Args: rangeArgs(1, -1, "PATTERN..."),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return runSub(cmd, &f, args)
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&f.count, "count", 0, "exit after `N` messages (0: run until interrupted)")
	fl.DurationVar(&f.timeout, "timeout", 0, "fail if the messages have not arrived within `DURATION` (0: wait forever)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per message")
	fl.BoolVar(&f.noReconnect, "no-reconnect", false, "exit 1 when the connection to the broker is lost, instead of reconnecting")
	fl.StringVar(&f.group, "group", "", "join queue group `NAME`: each message goes to one of its members")
	fl.StringVar(&f.strategy, "strategy", "round-robin", "the group's `STRATEGY`: round-robin, least-loaded, first-available or random")
	f.id.add(fl)
	return cmd
}

func runSub(cmd *cobra.Command, f *subFlags, patterns []string) error {
	switch {
	case f.count < 0:
		return usageErrorf("--count must not be negative, got %d", f.count)
	case f.timeout < 0:
		return usageErrorf("--timeout must not be negative, got %v", f.timeout)
	}
	strategy, err := eventbus.ParseGroupStrategy(f.strategy)
	if err != nil {
		return usageErrorf("--strategy: %v", strings.TrimPrefix(err.Error(), "eventbus: "))
	}
	for _, p := range patterns {
		if err := topic.ValidatePattern(p); err != nil {
			return err
		}
	}
	opts, err := f.id.options(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errOut := &lockedWriter{w: cmd.ErrOrStderr()} // the client's handlers write too
	if !f.noReconnect {
		opts = append(opts, reconnectNotices(errOut)...)
	}
	c, err := dial(ctx, cmd, opts...)
	if err != nil {
		return interrupted(ctx, err, f.count == 0)
	}
	defer c.Close()
	s, err := c.SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: patterns, Group: f.group, Strategy: strategy, OnGap: func(g eventbus.Gap) {
		fmt.Fprintln(errOut, "eventbus: reconnected: "+g.String())
	}})
	if err != nil {
		return interrupted(ctx, err, f.count == 0)
	}
	p := printer{out: cmd.OutOrStdout(), errOut: errOut, json: f.json}
	return receive(ctx, c, s, &p, f)
}

// receive prints messages until the count is reached, the timeout passes,
// the context ends or the connection is lost.
func receive(ctx context.Context, c *eventbus.Client, s *eventbus.Subscription, p *printer, f *subFlags) error {
	var timeout <-chan time.Time
	if f.timeout > 0 {
		t := time.NewTimer(f.timeout)
		defer t.Stop()
		timeout = t.C
	}
	got := 0
	for f.count == 0 || got < f.count {
		select {
		case m, ok := <-s.C:
			if !ok {
				return connectionLost(c, got, f.count)
			}
			if err := p.print(m); err != nil {
				return err
			}
			got++
		case <-timeout:
			return fmt.Errorf("timed out after %v waiting for messages (%s)", f.timeout, progress(got, f.count))
		case <-ctx.Done():
			if f.count == 0 {
				return nil
			}
			return fmt.Errorf("interrupted waiting for messages (%s)", progress(got, f.count))
		}
	}
	return nil
}

func progress(got, count int) string {
	if count == 0 {
		return fmt.Sprintf("got %d", got)
	}
	return fmt.Sprintf("got %d of %d", got, count)
}

// connectionLost explains why the subscription's channel closed: the
// client is closed, and any call reports the error that closed it.
func connectionLost(c *eventbus.Client, got, count int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := c.Flush(ctx)
	why := "the connection to the broker was lost"
	if reason := closeReason(err); reason != "" {
		why += ": " + reason
	}
	return fmt.Errorf("%s (%s)", why, progress(got, count))
}

// closeReason is why a closed client closed, e.g. "broker is shutting
// down"; "" when the broker just hung up. The client's error joins
// ErrClientClosed and the cause.
func closeReason(err error) string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			if e != eventbus.ErrClientClosed {
				err = e
			}
		}
	}
	if err == nil || errors.Is(err, io.EOF) {
		return ""
	}
	return err.Error()
}

// reconnectNotices makes a client reconnect and tell the person at the
// terminal when its connection is lost; the subscription's gap notice
// says when it is back, and whether the broker restarted meanwhile.
func reconnectNotices(w io.Writer) []eventbus.ClientOption {
	return []eventbus.ClientOption{
		eventbus.WithReconnect(true),
		eventbus.WithDisconnectHandler(func(err error) {
			fmt.Fprintf(w, "eventbus: connection to the broker lost (%s); reconnecting\n", safeMessage(err.Error()))
		}),
		eventbus.WithErrorHandler(func(err error) { // a subscription the new broker refused
			fmt.Fprintln(w, safeMessage(err.Error()))
		}),
	}
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
