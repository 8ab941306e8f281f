package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
)

type controlFlags struct {
	timeout time.Duration
	id      identityFlags
}

func newControlCmd() *cobra.Command {
	var f controlFlags
	var names []string
	for _, op := range eventbus.LifecycleOps {
		names = append(names, string(op))
	}
	cmd := &cobra.Command{
		Use:   "control [flags] COLLECTOR OPERATION [ARGUMENT]",
		Short: "send a lifecycle operation to a collector",
		Long: `Send OPERATION, with ARGUMENT if given (update-config's new configuration,
for instance), to the collector component COLLECTOR, and print its reply.
OPERATION is one of: ` + strings.Join(names, ", ") + `.

Lifecycle control is privileged: only the agent may send it (--as agent).
control exits 1 with "no responders" when no such collector serves
lifecycle requests, or with the collector's error reply.`,
		Example: `  eventbus control --as agent procmond health-check
  eventbus control --as agent procmond update-config '{"scan_interval":"30s"}'`,
		Args: rangeArgs(2, 3, "COLLECTOR", "OPERATION", "[ARGUMENT]"),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return runControl(cmd, &f, args, names)
		}),
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "fail if no reply arrives within `DURATION`")
	f.id.add(fl)
	return cmd
}

func runControl(cmd *cobra.Command, f *controlFlags, args, names []string) error {
	if !slices.Contains(names, args[1]) {
		return usageErrorf("unknown operation %q: want one of %s", args[1], strings.Join(names, ", "))
	}
	if f.timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %v", f.timeout)
	}
	var arg []byte
	if len(args) == 3 {
		arg = []byte(args[2])
	}
	opts, err := f.id.options(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	c, err := dial(ctx, cmd, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	out, err := c.Control(ctx, args[0], eventbus.LifecycleOp(args[1]), arg)
	if err != nil {
		return fmt.Errorf("%s %s: %w", args[0], args[1], err)
	}
	_, err = cmd.OutOrStdout().Write(append(appendText(nil, out), '\n'))
	return err
}
