package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus/topic"
)

func newTopicCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "work with topics and patterns",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check PATTERN TOPIC",
		Short: "check whether PATTERN matches TOPIC",
		Long: `Print "match" or "no match". Exit status: 0 match, 1 no match, 2 if the
pattern or the topic is invalid (the error names the rule broken).`,
		Args: exactArgs("PATTERN", "TOPIC"),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			pattern, name := args[0], args[1]
			if err := topic.ValidatePattern(pattern); err != nil {
				return err
			}
			if err := topic.Validate(name); err != nil {
				return err
			}
			if !topic.Match(pattern, name) {
				fmt.Fprintln(cmd.OutOrStdout(), "no match")
				return &exitStatus{code: exitError}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "match")
			return nil
		}),
	})
	return cmd
}
