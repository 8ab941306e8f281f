package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/wire"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  exactArgs(),
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "eventbus %s (protocol %d, %s %s/%s)\n",
				broker.Version, wire.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
