package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var cfg bench.Config
	var runs int
	var asJSON, external bool
	var id identityFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency end to end over the socket",
		Long: `Measure eventbus end to end: publishers and subscribers are clients over a
real Unix socket. By default the broker runs inside this process on a
temporary socket; with --external the broker at --socket is measured, and
--as makes every client claim a component its policy lets publish and
subscribe to --topic (e.g. --as agent).

Throughput mode (no --rate) publishes as fast as possible and reports
messages delivered per second across all subscribers. A subscriber that
falls behind has messages dropped by the broker (and is told so): the
missed share is reported. Paced mode (--rate) publishes at that rate and
reports one-way latency (subscriber receipt minus publisher timestamp).

--baseline also measures a raw Unix-socket writer->reader (length-prefixed
frames, 64 KiB buffers) in the same run and prints the bus's per-subscriber
delivery rate as a ratio of it. --correlation publishes with metadata and
measures the same load without it in the same run, for the overhead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if external {
				cfg.Socket = socketPath(cmd)
			} else if cmd.Flags().Changed("as") {
				return usageErrorf("--as is for --external: the broker in this process lets every client publish and subscribe")
			}
			opts, err := id.options(cmd)
			if err != nil {
				return err
			}
			cfg.ClientOptions = opts
			if runs < 1 {
				return usageErrorf("--runs must be at least 1, got %d", runs)
			}
			var reps []bench.Report
			out := cmd.OutOrStdout()
			if !asJSON {
				printBenchHeader(out, cfg)
			}
			for i := 0; i < runs; i++ {
				cfg.PlainFirst = i%2 == 1
				rep, err := bench.Run(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				reps = append(reps, rep)
				if !asJSON {
					printBenchRun(out, i+1, rep)
				}
			}
			sum := bench.Summarize(reps)
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Config bench.Config  `json:"config"`
					Median bench.Summary `json:"median"`
				}{cfg, sum})
			}
			printBenchSummary(out, sum)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Pubs, "pub", 1, "publishing clients")
	f.IntVar(&cfg.Subs, "sub", 1, "subscribing clients")
	f.IntVar(&cfg.Size, "size", 128, "payload bytes")
	f.IntVar(&cfg.Msgs, "msgs", 1_000_000, "messages published in all")
	f.StringVar(&cfg.Topic, "topic", "bench.events.data", "topic to publish to")
	f.StringVar(&cfg.Pattern, "pattern", "#", "pattern each subscriber subscribes to (use the topic for exact subscriptions)")
	f.IntVar(&cfg.Rate, "rate", 0, "publish this many messages per second in all (paced mode); 0 = as fast as possible")
	f.BoolVar(&cfg.Baseline, "baseline", false, "also measure a raw Unix-socket writer->reader in the same run")
	f.BoolVar(&cfg.Correlation, "correlation", false, "publish with correlation metadata (stage, source, 4 tags), which the broker checks and records, and compare with the same load without it")
	f.DurationVar(&cfg.Timeout, "timeout", 60*time.Second, "how long to wait for subscribers after publishing")
	f.IntVar(&runs, "runs", 1, "repeat the measurement and report medians")
	f.BoolVar(&external, "external", false, "measure the broker at --socket instead of one in this process")
	f.BoolVar(&asJSON, "json", false, "print the configuration and medians as JSON")
	id.add(f)
	return cmd
}

func printBenchHeader(w io.Writer, c bench.Config) {
	where := "broker in this process"
	if c.Socket != "" {
		where = "broker at " + c.Socket
	}
	mode := "as fast as possible"
	if c.Rate > 0 {
		mode = fmt.Sprintf("paced at %d msg/s", c.Rate)
	}
	corr := ""
	if c.Correlation {
		corr = ", with correlation metadata"
	}
	fmt.Fprintf(w, "eventbus bench: %d pub -> %d sub, %d B payloads, %d msgs, topic %s, pattern %q, %s%s, %s\n",
		c.Pubs, c.Subs, c.Size, c.Msgs, c.Topic, c.Pattern, mode, corr, where)
}

func printBenchRun(w io.Writer, n int, r bench.Report) {
	b := r.Bus
	fmt.Fprintf(w, "run %d: delivered %s msg/s (published %s msg/s, missed %.1f%%), latency p50 %v p99 %v p99.9 %v",
		n, rate(b.DeliverRate()), rate(b.PublishRate()), b.MissedPercent(), us(b.Latency.P50), us(b.Latency.P99), us(b.Latency.P999))
	if r.Baseline != nil {
		fmt.Fprintf(w, "; raw socket %s msg/s, p50 %v p99 %v; ratio %.3f",
			rate(r.Baseline.DeliverRate()), us(r.Baseline.Latency.P50), us(r.Baseline.Latency.P99), r.Ratio())
	}
	if p := r.Plain; p != nil {
		fmt.Fprintf(w, "; without metadata %s msg/s, p50 %v p99 %v", rate(p.DeliverRate()), us(p.Latency.P50), us(p.Latency.P99))
	}
	fmt.Fprintln(w)
}

func printBenchSummary(w io.Writer, s bench.Summary) {
	fmt.Fprintf(w, "median of %d: delivered %s msg/s, published %s msg/s, missed %.1f%%, latency p50 %v p99 %v p99.9 %v\n",
		s.Runs, rate(s.DeliverRate), rate(s.PublishRate), s.MissedPercent, us(s.P50), us(s.P99), us(s.P999))
	if s.BaselineRate > 0 {
		fmt.Fprintf(w, "raw-socket baseline: %s msg/s, p50 %v p99 %v; eventbus per subscriber = %.3f of baseline\n",
			rate(s.BaselineRate), us(s.BaselineP50), us(s.BaselineP99), s.Ratio)
	}
	if s.PlainRate > 0 {
		fmt.Fprintf(w, "without metadata: %s msg/s, p50 %v; with/without = %.3f delivery rate, %.3f p50\n",
			rate(s.PlainRate), us(s.PlainP50), s.PlainRateRatio, s.PlainP50Ratio)
	}
}

// rate formats a rate with thousands separators.
func rate(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// us rounds a latency for display.
func us(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}
