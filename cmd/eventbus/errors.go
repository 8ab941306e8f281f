package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/topic"
)

// Exit statuses.
const (
	exitError = 1
	exitUsage = 2
)

// exitStatus is an error that sets the exit status. A nil err exits with
// code silently: the command has already said what it had to.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

// usageErrorf reports a command line the command cannot run with.
func usageErrorf(format string, args ...any) error {
	return &exitStatus{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error from a command that ran to an exit status.
func exitCode(err error) int {
	var es *exitStatus
	var te *topic.Error
	switch {
	case errors.As(err, &es):
		return es.code
	case errors.As(err, &te),
		errors.Is(err, eventbus.ErrInvalidTopic),
		errors.Is(err, eventbus.ErrInvalidPattern),
		errors.Is(err, eventbus.ErrReservedTopic):
		return exitUsage
	}
	return exitError
}

// message is err's text for a person, as the library wrote it, with the
// program's name in front where the error does not start with it (the
// CLI's own errors, and other packages'). Empty for a silent exit.
func message(err error) string {
	var es *exitStatus
	if errors.As(err, &es) && es.err == nil {
		return ""
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "eventbus: ") {
		msg = "eventbus: " + msg
	}
	return msg
}

// exactArgs is cobra.ExactArgs with a message naming what is expected.
func exactArgs(names ...string) cobra.PositionalArgs {
	return rangeArgs(len(names), len(names), names...)
}

// rangeArgs accepts min to max arguments; names describe them.
func rangeArgs(min, max int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			want := strings.Join(names, " ")
			if want == "" {
				want = "no arguments"
			}
			return fmt.Errorf("%s takes %s; got %d argument(s)", cmd.CommandPath(), want, len(args))
		}
		return nil
	}
}
