package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
)

func newCollectorsCmd() *cobra.Command {
	var f queryFlags
	cmd := &cobra.Command{
		Use:   "collectors [flags]",
		Short: "list the registered collectors",
		Long: `List the collectors registered with the broker: those that connected with
capabilities as a component the policy admits. For each: component, pid,
uid, status (what its heartbeats say) and health (healthy, or unhealthy
after missed heartbeats), when it last heartbeat, requests in flight,
replies done and failed, executable and capabilities.

The registry is only for registered components: claim one with --as (e.g.
--as agent). With --json, each collector is a JSON object.`,
		Example: `  eventbus collectors --as agent
  eventbus collectors --as agent --json`,
		Args: exactArgs(),
		RunE: safeRunE(func(cmd *cobra.Command, _ []string) error {
			return f.query(cmd, queryTimeout, func(ctx context.Context, c *eventbus.Client) error {
				list, err := c.Collectors(ctx)
				if err != nil {
					return f.anonymousHint(err)
				}
				sort.Slice(list, func(i, j int) bool { return list[i].ConnectionID < list[j].ConnectionID })
				return writeCollectors(cmd.OutOrStdout(), list, f.json, time.Now())
			})
		}),
	}
	f.add(cmd.Flags(), false)
	return cmd
}

type jsonCollector struct {
	ConnectionID  uint64            `json:"connection_id"`
	Component     string            `json:"component"`
	PID           int               `json:"pid"`
	UID           uint32            `json:"uid"`
	Exe           string            `json:"exe"`
	Status        string            `json:"status"`
	Healthy       bool              `json:"healthy"`
	RegisteredAt  string            `json:"registered_at"`
	LastHeartbeat string            `json:"last_heartbeat"`
	InFlight      int               `json:"in_flight"`
	Done          uint64            `json:"done"`
	Failed        uint64            `json:"failed"`
	EventTypes    []string          `json:"event_types"`
	Operations    []string          `json:"operations"`
	MaxConcurrent int               `json:"max_concurrent_tasks"`
	Priorities    []int             `json:"priorities"`
	Version       string            `json:"version"`
	Attributes    map[string]string `json:"attributes"`
	Diagnostics   map[string]string `json:"diagnostics"`
}

func writeCollectors(w io.Writer, list []eventbus.CollectorInfo, asJSON bool, now time.Time) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, c := range list {
			k := c.Capabilities
			if err := enc.Encode(jsonCollector{ConnectionID: c.ConnectionID, Component: c.Component, PID: c.PID, UID: c.UID, Exe: c.Exe,
				Status: c.Status.String(), Healthy: c.Healthy, RegisteredAt: c.RegisteredAt.UTC().Format(time.RFC3339Nano),
				LastHeartbeat: c.LastHeartbeat.UTC().Format(time.RFC3339Nano), InFlight: c.InFlight, Done: c.Done, Failed: c.Failed,
				EventTypes: orEmpty(k.EventTypes), Operations: orEmpty(k.Operations), MaxConcurrent: k.MaxConcurrentTasks,
				Priorities: k.Priorities, Version: k.Version, Attributes: k.Attributes, Diagnostics: c.Diagnostics}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no registered collectors")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tPID\tUID\tSTATUS\tHEALTH\tLAST BEAT\tIN FLIGHT\tDONE\tFAILED\tEXE\tCAPABILITIES")
	for _, c := range list {
		health := "healthy"
		if !c.Healthy {
			health = "unhealthy"
		}
		k := c.Capabilities
		caps := fmt.Sprintf("events=%s ops=%s max=%d", strings.Join(k.EventTypes, ","), strings.Join(k.Operations, ","), k.MaxConcurrentTasks)
		if k.Version != "" {
			caps += " v" + k.Version
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s ago\t%d\t%d\t%d\t%s\t%s\n", safe(c.Component), c.PID, c.UID, c.Status, health,
			now.Sub(c.LastHeartbeat).Round(time.Millisecond), c.InFlight, c.Done, c.Failed, safe(c.Exe), safe(caps))
	}
	return tw.Flush()
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
