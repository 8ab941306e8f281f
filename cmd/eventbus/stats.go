package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus/stats"
)

func newStatsCmd() *cobra.Command {
	var asJSON bool
	var id identityFlags
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "show the broker's statistics",
		Long: `Show the broker's statistics: uptime, message totals, connections with
their kernel-verified identity (uid, gid, pid, executable, the component
the policy admitted and whether it is the agent), access denials per
component, topics, patterns and delivery latency. Client names and
executables are the peers' own, so control, bidi and other invisible
characters in them are shown escaped (\x1b, \u202e, \\). With --json,
print the stats.Snapshot as indented JSON.`,
		Args: exactArgs(),
		RunE: safeRunE(func(cmd *cobra.Command, _ []string) error {
			opts, err := id.options(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), dialTimeout)
			defer cancel()
			c, err := dial(ctx, cmd, opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := c.Stats(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			return writeStats(cmd.OutOrStdout(), &s)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the snapshot as JSON")
	id.add(cmd.Flags())
	return cmd
}

// writeStats writes s as text for a person.
func writeStats(w io.Writer, s *stats.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "uptime\t%v (since %s)\n", roundDuration(s.Uptime()), s.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "messages\t%d published, %d delivered, %d dropped\n", s.Published, s.Delivered, s.Dropped)
	fmt.Fprintf(tw, "connections\t%d open (limit %d), %d since start, %d refused\n",
		s.Connections, s.MaxConnections, s.ConnectionsTotal, s.ConnectionsRefused)
	fmt.Fprintf(tw, "protocol errors\t%d\n", s.ProtocolErrors)
	fmt.Fprintf(tw, "access denials\t%d\n", totalDenials(s.Denials))
	if s.RSSBytes > 0 || s.HeapBytes > 0 {
		fmt.Fprintf(tw, "memory\t%s resident, %s heap\n", byteSize(int(s.RSSBytes)), byteSize(int(s.HeapBytes)))
	}
	tw.Flush()
	writeConnections(w, s.ConnectionList)
	writeDenials(w, s.Denials)
	writeLimits(w, s.Limits)
	if !s.StatisticsEnabled {
		fmt.Fprintln(w, "\nper-topic counts and latency are off (enable_statistics: false)")
	} else {
		writeTopics(w, s)
	}
	writePatterns(w, s.Patterns)
	if s.StatisticsEnabled {
		writeLatency(w, &s.DeliveryLatency)
	}
	return nil
}

func writeConnections(w io.Writer, cs []stats.Connection) {
	fmt.Fprintln(w, "\nCONNECTIONS")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tUID\tGID\tNAME\tCOMPONENT\tAGENT\tSUBS\tPUBLISHED\tDELIVERED\tDROPPED\tQUEUED\tEXE")
	for _, c := range cs {
		pid := strconv.Itoa(c.PID)
		if c.InProcess {
			pid += " (in-process)"
		}
		agent := "-"
		if c.Agent {
			agent = "yes"
		}
		// Windows peers have a SID and no uid or gid.
		uid, gid := strconv.FormatUint(uint64(c.UID), 10), strconv.FormatUint(uint64(c.GID), 10)
		if c.SID != "" {
			uid, gid = safe(c.SID), "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d (%s)\t%s\n",
			c.ID, pid, uid, gid, orDash(safe(c.ClientName)), orDash(safe(c.Component)), agent, c.Subscriptions,
			c.Published, c.Delivered, c.Dropped, c.QueuedMessages, byteSize(c.QueuedBytes), orDash(safe(c.Exe)))
	}
	tw.Flush()
}

// writeDenials lists the operations the access policy refused, per
// component: "(anonymous)" for unregistered peers, "(refused)" for claims
// refused at hello.
func writeDenials(w io.Writer, ds []stats.DenialCount) {
	fmt.Fprintln(w, "\nDENIALS")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tDENIED")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%d\n", safe(d.Component), d.Count)
	}
	tw.Flush()
}

// writeLimits lists the resource limits the broker enforced, with how
// often; none is left out when none was reached.
func writeLimits(w io.Writer, ls []stats.LimitCount) {
	if len(ls) == 0 {
		return
	}
	fmt.Fprintln(w, "\nLIMITS REACHED")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LIMIT\tTIMES")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%d\n", safe(l.Limit), l.Count)
	}
	tw.Flush()
}

func totalDenials(ds []stats.DenialCount) uint64 {
	var n uint64
	for _, d := range ds {
		n += d.Count
	}
	return n
}

func writeTopics(w io.Writer, s *stats.Snapshot) {
	fmt.Fprintln(w, "\nTOPICS")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPUBLISHED")
	for _, t := range s.Topics {
		fmt.Fprintf(tw, "%s\t%d\n", safe(t.Topic), t.Published)
	}
	if s.PublishedUntracked > 0 {
		fmt.Fprintf(tw, "(other topics, over the tracking limit)\t%d\n", s.PublishedUntracked)
	}
	tw.Flush()
}

func writePatterns(w io.Writer, ps []stats.PatternCount) {
	fmt.Fprintln(w, "\nPATTERNS")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PATTERN\tSUBSCRIBERS")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%d\n", safe(p.Pattern), p.Subscribers)
	}
	tw.Flush()
}

func writeLatency(w io.Writer, l *stats.LatencySnapshot) {
	fmt.Fprintf(w, "\nDELIVERY LATENCY (%d messages)\n", l.Count)
	if l.Count == 0 {
		return
	}
	fmt.Fprintf(w, "p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n", l.P50, l.P90, l.P99, l.P999, l.Max)
}

// roundDuration keeps an uptime readable: seconds once past a minute.
func roundDuration(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// byteSize formats n bytes with a binary unit.
func byteSize(n int) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := unit, 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
