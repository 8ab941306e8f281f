package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/wire"
)

func newTimelineCmd() *cobra.Command {
	var f queryFlags
	cmd := &cobra.Command{
		Use:   "timeline [flags] ROOT",
		Short: "show a workflow's events in the order received",
		Long: `Show the events of the workflow rooted at ROOT (docs/CORRELATION.md) that the broker
still holds, in the order it received them, as a tree: each line is
indented two spaces per parent link above its correlation. A line
"── stage S" comes before each event whose stage differs from the previous
event's. Each event shows the time since the workflow's first event, its
stage, topic, source process (as the publisher said), publisher
pid/component (as the broker verified), correlation id (shortened unless
--full-ids) and "final" on a publisher's final result.

Only events on topics this client may subscribe to are shown; claim a
component with --as to see restricted topics. With --json, each event is a
JSON object (received_at, stage, topic, source_process, publisher_pid,
publisher_component, correlation_id, parent_id, sequence, final, depth).

Exit status 1 if the broker holds no event of ROOT that this client may see.`,
		Args: exactArgs("ROOT"),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return f.query(cmd, queryTimeout, func(ctx context.Context, c *eventbus.Client) error {
				entries, err := c.Timeline(ctx, args[0])
				if err != nil {
					return err
				}
				if len(entries) == 0 {
					return fmt.Errorf("timeline %s: no events recorded for this workflow, or none this client may see", args[0])
				}
				return writeTimeline(cmd.OutOrStdout(), entries, f.json, idFormat{f.fullIDs})
			})
		}),
	}
	f.add(cmd.Flags(), true)
	return cmd
}

func newWorkflowsCmd() *cobra.Command {
	var f queryFlags
	cmd := &cobra.Command{
		Use:   "workflows [flags]",
		Short: "list the active workflows",
		Long: `List the workflows the broker tracks (docs/CORRELATION.md), oldest first: root id,
current stage (the one that started last), stages completed of those seen,
correlations, participating processes, events (with how many were final
results) and when the first and the latest event were received. A
workflow is dropped after being idle for the broker's workflow idle
timeout.

Workflow state spans topics, so it is only for registered components:
claim one with --as (e.g. --as agent). With --json, each workflow is a JSON
object (root_id, current_stage, stages, completed_stages, correlations,
processes, events, finals, first_seen, last_seen).`,
		Args: exactArgs(),
		RunE: safeRunE(func(cmd *cobra.Command, _ []string) error {
			return f.query(cmd, queryTimeout, func(ctx context.Context, c *eventbus.Client) error {
				ws, err := c.Workflows(ctx)
				if err != nil {
					return f.anonymousHint(err)
				}
				return writeWorkflows(cmd.OutOrStdout(), ws, f.json)
			})
		}),
	}
	f.add(cmd.Flags(), false)
	return cmd
}

func newWorkflowCmd() *cobra.Command {
	var f queryFlags
	cmd := &cobra.Command{
		Use:   "workflow [flags] ROOT",
		Short: "show the state of one workflow",
		Long: `Show everything the broker tracks for the workflow rooted at ROOT
(docs/CORRELATION.md): its totals, its stages (events, and when each was completed:
by a final result, or when a correlation whose parent is in it started in
another stage), its correlations with their parents, and its processes as
the broker verified them.

Only for registered components: claim one with --as (e.g. --as agent). With
--json, the state is one JSON object. Exit status 1 if the broker does not
track ROOT (never seen, or dropped after being idle).`,
		Args: exactArgs("ROOT"),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return f.query(cmd, queryTimeout, func(ctx context.Context, c *eventbus.Client) error {
				w, ok, err := c.Workflow(ctx, args[0])
				if err != nil {
					return f.anonymousHint(err)
				}
				if !ok {
					return fmt.Errorf("workflow %s: not tracked (never seen, or dropped after being idle)", args[0])
				}
				return writeWorkflow(cmd.OutOrStdout(), &w, f.json)
			})
		}),
	}
	f.add(cmd.Flags(), false)
	return cmd
}

// anonymousHint adds to an anonymous client's FORBIDDEN how to claim a
// component.
func (f *queryFlags) anonymousHint(err error) error {
	if f.id.as == "" && errors.Is(err, wire.ErrForbidden) {
		return fmt.Errorf("%w (--as COMPONENT claims one)", err)
	}
	return err
}
