package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
)

// queryTimeout bounds a history, timeline or workflow query, connection
// included: a local broker answers even a full reply in well under it.
const queryTimeout = 30 * time.Second

// maxWaitTimeout is the longest wait the broker accepts (PROTOCOL.md §5.8).
const maxWaitTimeout = 10 * time.Minute

// queryFlags are the flags every correlation query command takes.
type queryFlags struct {
	id      identityFlags
	json    bool
	fullIDs bool
}

func (f *queryFlags) add(fl *pflag.FlagSet, ids bool) {
	f.id.add(fl)
	fl.BoolVar(&f.json, "json", false, "print one JSON object per line")
	if ids {
		fl.BoolVar(&f.fullIDs, "full-ids", false, "print correlation ids in full (default: ids over 16 characters shortened to their last 12)")
	}
}

// query dials the broker with the identity the flags claim and runs ask
// with the client, both within timeout.
func (f *queryFlags) query(cmd *cobra.Command, timeout time.Duration, ask func(context.Context, *eventbus.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	opts, err := f.id.options(cmd)
	if err != nil {
		return err
	}
	c, err := dial(ctx, cmd, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	return ask(ctx, c)
}

type historyFlags struct {
	queryFlags
	tags          []string
	correlationID string
	root          string
	stage         string
	since, until  string
	limit         int
}

func newHistoryCmd() *cobra.Command {
	var f historyFlags
	cmd := &cobra.Command{
		Use:   "history [flags]",
		Short: "show correlated events the broker recorded",
		Long: `Show the correlated events (docs/CORRELATION.md) in the broker's history that match
every criterion given: --tag (repeatable, all must match), --correlation,
--root, --stage, and the receive time in [--since, --until). --since and
--until take an RFC 3339 time or a duration meaning that long ago
(--since 10m). With no criteria, show the most recent events.

The broker keeps the --limit most recent matches (default 1000, at most
100000) and returns only events on topics this client may subscribe to:
claim a component with --as to see restricted topics.

Each event is one line: received time, topic, stage, correlation id
(shortened unless --full-ids), publisher pid/component as the broker
verified it, "final" on a publisher's final result, and the payload
(Go-quoted unless printable text). Control, bidi and other invisible
characters in the other fields are shown escaped (\x1b, \u202e, \\), as
are those of timeline, workflows and workflow. With --json, each is a JSON
object as sub --json prints it, every string exact. When the results did
not fit in one reply, the most recent are shown and "# truncated: showing
the N most recent" is printed on standard error; the exit status is
still 0.`,
		Args: exactArgs(),
		RunE: safeRunE(func(cmd *cobra.Command, _ []string) error {
			return runHistory(cmd, &f)
		}),
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.tags, "tag", nil, "only events with tag `key=value` (repeatable; all must match)")
	fl.StringVar(&f.correlationID, "correlation", "", "only events of correlation `ID`")
	fl.StringVar(&f.root, "root", "", "only events of the workflow rooted at `ID`")
	fl.StringVar(&f.stage, "stage", "", "only events of workflow `STAGE`")
	fl.StringVar(&f.since, "since", "", "only events received at or after `TIME` (RFC 3339, or a duration ago: 10m)")
	fl.StringVar(&f.until, "until", "", "only events received before `TIME` (RFC 3339, or a duration ago)")
	fl.IntVar(&f.limit, "limit", 0, "show the `N` most recent matches (0: the broker's default, 1000)")
	f.add(fl, true)
	return cmd
}

func runHistory(cmd *cobra.Command, f *historyFlags) error {
	q, err := f.query(time.Now())
	if err != nil {
		return err
	}
	return f.queryFlags.query(cmd, queryTimeout, func(ctx context.Context, c *eventbus.Client) error {
		msgs, err := c.History(ctx, q)
		return writeHistory(cmd.OutOrStdout(), cmd.ErrOrStderr(), msgs, err, f.json, idFormat{f.fullIDs})
	})
}

// writeHistory prints History's results; results cut to fit one reply
// (ErrTruncated) are printed with a note on errOut and are no failure.
func writeHistory(out, errOut io.Writer, msgs []*eventbus.Message, err error, asJSON bool, ids idFormat) error {
	truncated := errors.Is(err, eventbus.ErrTruncated)
	if err != nil && !truncated {
		return err
	}
	if err := writeMessages(out, errOut, msgs, asJSON, ids); err != nil {
		return err
	}
	if truncated {
		fmt.Fprintf(errOut, "# truncated: showing the %d most recent\n", len(msgs))
	}
	return nil
}

// query turns the flags into a HistoryQuery; relative times count back
// from now.
func (f *historyFlags) query(now time.Time) (eventbus.HistoryQuery, error) {
	q := eventbus.HistoryQuery{CorrelationID: f.correlationID, RootID: f.root, Stage: f.stage, Limit: f.limit}
	if f.limit < 0 {
		return q, usageErrorf("--limit must not be negative, got %d", f.limit)
	}
	var err error
	if q.Tags, err = parseTags(f.tags); err != nil {
		return q, err
	}
	if q.Since, err = parseTime("since", f.since, now); err != nil {
		return q, err
	}
	if q.Until, err = parseTime("until", f.until, now); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, usageErrorf("--since %s is not before --until %s", f.since, f.until)
	}
	return q, nil
}

// parseTime reads a --since or --until value: an RFC 3339 time, or a
// non-negative duration meaning that long before now. "" is the zero time.
func parseTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErrorf("--%s %s: a duration means that long ago and must not be negative", flag, s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usageErrorf("--%s %q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a duration ago (10m)", flag, s)
	}
	return t, nil
}

type waitFlags struct {
	queryFlags
	publishers int
	count      int
	quiet      time.Duration
	timeout    time.Duration
}

func newWaitCmd() *cobra.Command {
	var f waitFlags
	cmd := &cobra.Command{
		Use:   "wait [flags] ID",
		Short: "wait for the results of a correlation",
		Long: `Wait until the broker has recorded the results of correlation ID (docs/CORRELATION.md),
then print its events as history does. Give exactly one condition:

  --publishers N  N distinct publishers (pid and component, as the broker
                  verified them) have published a result marked final
                  (pub --final)
  --count N       N events have been recorded
  --quiet D       at least one event, then none for D

Events recorded before wait started count. The broker gives up after
--timeout (default 30s, at most 10m).

Exit status: 0 when the condition held; 1 when it did not, with the events
collected so far printed and the reason on standard error, e.g.
"eventbus: wait condition not met: correlation: wait for 2 final publishers
on X: deadline exceeded with 1 final publisher, 3 events".`,
		Args: exactArgs("ID"),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return runWait(cmd, &f, args[0])
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&f.publishers, "publishers", 0, "wait for final results from `N` distinct publishers")
	fl.IntVar(&f.count, "count", 0, "wait for `N` events")
	fl.DurationVar(&f.quiet, "quiet", 0, "wait until no event has arrived for `DURATION`")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after `DURATION` (at most 10m)")
	f.add(fl, true)
	return cmd
}

// condition returns the one condition the flags give.
func (f *waitFlags) condition(cmd *cobra.Command) (correlation.Condition, error) {
	var conds []correlation.Condition
	fl := cmd.Flags()
	if fl.Changed("publishers") {
		if f.publishers < 1 {
			return correlation.Condition{}, usageErrorf("--publishers must be at least 1, got %d", f.publishers)
		}
		conds = append(conds, correlation.FinalPublishers(f.publishers))
	}
	if fl.Changed("count") {
		if f.count < 1 {
			return correlation.Condition{}, usageErrorf("--count must be at least 1, got %d", f.count)
		}
		conds = append(conds, correlation.EventCount(f.count))
	}
	if fl.Changed("quiet") {
		if f.quiet <= 0 {
			return correlation.Condition{}, usageErrorf("--quiet must be positive, got %v", f.quiet)
		}
		conds = append(conds, correlation.QuietFor(f.quiet))
	}
	if len(conds) != 1 {
		return correlation.Condition{}, usageErrorf("give exactly one of --publishers, --count and --quiet; got %d", len(conds))
	}
	switch {
	case f.timeout <= 0:
		return correlation.Condition{}, usageErrorf("--timeout must be positive, got %v", f.timeout)
	case f.timeout > maxWaitTimeout:
		return correlation.Condition{}, usageErrorf("--timeout %v is over the broker's limit of %v", f.timeout, maxWaitTimeout)
	}
	return conds[0], nil
}

func runWait(cmd *cobra.Command, f *waitFlags, id string) error {
	until, err := f.condition(cmd)
	if err != nil {
		return err
	}
	if err := (correlation.Metadata{CorrelationID: id, RootID: id}).Validate(); err != nil {
		return &exitStatus{code: exitUsage, err: err}
	}
	return f.query(cmd, f.timeout, func(ctx context.Context, c *eventbus.Client) error {
		msgs, waitErr := c.Wait(ctx, id, until)
		if waitErr != nil && !errors.Is(waitErr, eventbus.ErrWaitUnmet) {
			return waitErr
		}
		if err := writeMessages(cmd.OutOrStdout(), cmd.ErrOrStderr(), msgs, f.json, idFormat{f.fullIDs}); err != nil {
			return err
		}
		return waitErr // an unmet condition, reported after the partial results
	})
}
