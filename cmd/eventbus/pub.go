package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/topic"
)

// maxLineBytes bounds one input line: the largest max_message_size any
// broker accepts (64 MiB). The broker's actual limit is checked by
// Client.Publish, which knows it from the handshake.
const maxLineBytes = 64 << 20

type pubFlags struct {
	count   int
	file    string
	name    string
	timeout time.Duration
	id      identityFlags
	corr    correlationFlags
}

func newPubCmd() *cobra.Command {
	var f pubFlags
	cmd := &cobra.Command{
		Use:   "pub [flags] TOPIC [PAYLOAD]",
		Short: "publish messages",
		Long: `Publish PAYLOAD on TOPIC. Without PAYLOAD, publish each line of --file
(or of standard input) as one message. --count publishes each message
that many times.

pub waits until the broker has confirmed every message (written it to
every matching subscriber, or counted it as dropped for one) and fails if
it refused any, for example a topic the access policy does not grant
(exit 1). If the broker dies or --timeout passes first, pub prints how many
messages were not confirmed, "N of M messages not confirmed", and exits 1:
each of those may or may not have been delivered; every other message was.
--timeout bounds connecting, publishing and that wait (not the reading of
standard input).

--as COMPONENT claims a component of the broker's policy; the broker admits
the claim only if the kernel's view of this process fits it. --as agent
also presents the agent token from --token-file (default agent.token
beside the socket; on Windows %AppData%\eventbus\agent.token). Without
--as, pub is anonymous and may publish only the topics the policy makes
public.

Correlation metadata (docs/CORRELATION.md): any of --correlation-id, --parent,
--root, --stage, --tag, --source or --final makes every message carry
metadata. The correlation id is --correlation-id, else a new time-ordered
id; the root is --root, else the correlation id (a new workflow, so give
--root with --parent for a child); started_at is now. The client numbers
the messages 1, 2, 3, ... within the correlation. --final marks them as
this publisher's final result, for the broker's wait-for-results.

A --tag without '=' or with an empty key, a key given twice, and metadata
over a limit (ids 256 bytes, stage and source 128, 64 tags, tag key 128,
tag value 1024; valid UTF-8) are usage errors (exit 2), reported before
connecting, e.g. "correlation: tag key too long: 130 bytes, limit 128".`,
		Args: rangeArgs(1, 2, "TOPIC", "[PAYLOAD]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPub(cmd, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.count, "count", 1, "publish each message `N` times")
	fl.StringVar(&f.file, "file", "", "read messages from `PATH`, one per line (- for standard input)")
	fl.StringVar(&f.name, "name", "", "client `NAME` shown in broker stats (default eventbus-pub)")
	fl.DurationVar(&f.timeout, "timeout", 0, "fail if publishing and the broker's processing take longer than `DURATION` (0: no bound)")
	f.id.add(fl)
	f.corr.add(fl)
	return cmd
}

func runPub(cmd *cobra.Command, f *pubFlags, args []string) error {
	topicName := args[0]
	switch {
	case f.count < 1:
		return usageErrorf("--count must be at least 1, got %d", f.count)
	case len(args) == 2 && f.file != "":
		return usageErrorf("give PAYLOAD or --file, not both")
	}
	if err := topic.Validate(topicName); err != nil {
		return err
	}
	// No signal handling: Ctrl-C ends pub at once, even while it waits on
	// standard input; buffered messages die with it, as they would anyway.
	ctx := cmd.Context()
	if f.timeout < 0 {
		return usageErrorf("--timeout must not be negative, got %v", f.timeout)
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	corr, err := f.corr.options(cmd)
	if err != nil {
		return err
	}
	opts, err := f.id.options(cmd)
	if err != nil {
		return err
	}
	if f.name != "" {
		opts = append(opts, eventbus.WithName(f.name))
	}
	c, err := dial(ctx, cmd, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	p := publisher{ctx: ctx, c: c, topic: topicName, count: f.count, opts: corr}
	if len(args) == 2 {
		err = p.publish([]byte(args[1]))
	} else {
		err = p.publishLines(cmd.InOrStdin(), f.file)
	}
	// err may be a local refusal, such as a message over the size limit:
	// what was published before it is still confirmed, or counted.
	// A refused publish (e.g. FORBIDDEN: the policy does not grant the
	// topic) is reported here; its message names the topic and the reason.
	ferr := c.Flush(ctx)
	return p.unconfirmed(cmp.Or(err, ferr), ferr, c.Close())
}

// unconfirmed returns the error of a run that ended with cause, counting
// the messages not confirmed: those flushErr and closeErr report lost, and
// the one Publish did not take. nil cause: the run succeeded.
func (p *publisher) unconfirmed(cause, flushErr, closeErr error) error {
	var n uint64
	for _, err := range []error{flushErr, closeErr} {
		var lost *eventbus.LostError
		if errors.As(err, &lost) {
			n += lost.Count
		}
	}
	if p.untaken {
		n++
	}
	switch {
	case n > 0:
		return fmt.Errorf("%d of %d messages not confirmed: %w", n, p.tried, cause)
	case cause != nil:
		return cause
	}
	return closeErr
}

// publisher publishes each message count times.
type publisher struct {
	ctx   context.Context
	c     *eventbus.Client
	topic string
	count int
	// opts returns the options of one publish; nil for none.
	opts func() []eventbus.PublishOption
	// tried counts the Publish calls; untaken says the last one failed
	// because the connection did, so the message was not taken.
	tried   uint64
	untaken bool
}

func (p *publisher) publish(payload []byte) error {
	for range p.count {
		var opts []eventbus.PublishOption
		if p.opts != nil {
			opts = p.opts()
		}
		p.tried++
		if err := p.c.Publish(p.ctx, p.topic, payload, opts...); err != nil {
			p.untaken = errors.Is(err, eventbus.ErrClientClosed) || errors.Is(err, eventbus.ErrDisconnected) ||
				errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
			return err
		}
	}
	return nil
}

// publishLines publishes each line of file, or of stdin when file is ""
// or "-". Errors name the line.
func (p *publisher) publishLines(stdin io.Reader, file string) error {
	in, name := stdin, "standard input"
	if file != "" && file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return err
		}
		defer fh.Close()
		in, name = fh, file
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		// Publish copies the payload into its buffer, so the scanner may
		// reuse it.
		if err := p.publish(sc.Bytes()); err != nil {
			return fmt.Errorf("%w (%s line %d)", err, name, line)
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("%s line %d: message too large: longer than %d bytes, the most any broker accepts", name, line+1, maxLineBytes)
	case err != nil:
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}
