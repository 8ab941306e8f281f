package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/topic"
)

type requestFlags struct {
	timeout time.Duration
	json    bool
	id      identityFlags
}

func newRequestCmd() *cobra.Command {
	var f requestFlags
	cmd := &cobra.Command{
		Use:   "request [flags] TOPIC [PAYLOAD]",
		Short: "send a request and print its reply",
		Long: `Send PAYLOAD (or standard input, without PAYLOAD) as a request on TOPIC and
print the one reply's payload, as sub prints a payload; with --json, the
reply as sub --json prints a message, the responder as its publisher.

A request goes only to responders (eventbus reply, or a client subscribed
as one), one member per queue group; the reply comes back to this process
alone. request exits 1 with "no responders" at once when no responder can
receive it, "deadline exceeded" after --timeout, or the responder's error
reply (code, category and message).`,
		Example: `  eventbus request svc.echo hello
  echo '{"pid":4242}' | eventbus request --timeout 2s control.collector.task.process`,
		Args: rangeArgs(1, 2, "TOPIC", "[PAYLOAD]"),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return runRequest(cmd, &f, args)
		}),
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "fail if no reply arrives within `DURATION`")
	fl.BoolVar(&f.json, "json", false, "print the reply as a JSON object")
	f.id.add(fl)
	return cmd
}

func runRequest(cmd *cobra.Command, f *requestFlags, args []string) error {
	if f.timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %v", f.timeout)
	}
	if err := topic.Validate(args[0]); err != nil {
		return err
	}
	var payload []byte
	if len(args) == 2 {
		payload = []byte(args[1])
	} else {
		var err error
		if payload, err = io.ReadAll(cmd.InOrStdin()); err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
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
	m, err := c.Request(ctx, args[0], payload)
	if err != nil {
		return err
	}
	p := printer{out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), json: f.json}
	if f.json {
		return p.print(m)
	}
	_, err = cmd.OutOrStdout().Write(append(appendText(nil, m.Payload), '\n'))
	return err
}

type replyFlags struct {
	exec     string
	register bool
	group    string
	strategy string
	id       identityFlags
}

func newReplyCmd() *cobra.Command {
	var f replyFlags
	cmd := &cobra.Command{
		Use:   "reply [flags] --exec CMD PATTERN...",
		Short: "answer requests with a command's output",
		Long: `Answer the requests matching the patterns, one at a time: each request's
payload goes to CMD's standard input (CMD runs under /bin/sh -c, cmd /C on
Windows), and CMD's standard output is the reply. A CMD that exits non-zero,
or runs past the request's deadline, answers with an error reply: code
"exit_status" (or "deadline"), category "server", and the last line CMD wrote
to standard error.

--group NAME shares the requests with the group's other members, chosen by
--strategy. --register (with --as COMPONENT) registers reply as a collector
whose operations are the patterns: eventbus collectors lists it, it
heartbeats while it runs, and it answers eventbus control's health-check and
get-capabilities. reply runs until interrupted; it reconnects when the broker goes
away, and says so on standard error.`,
		Example: `  eventbus reply --exec 'tr a-z A-Z' svc.upper
  eventbus reply --group hashers --strategy least-loaded --exec 'sha256sum' svc.hash`,
		Args: rangeArgs(1, -1, "PATTERN..."),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return runReply(cmd, &f, args)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.exec, "exec", "", "answer each request with the output of `CMD`")
	fl.BoolVar(&f.register, "register", false, "register as a collector serving the patterns (needs --as)")
	fl.StringVar(&f.group, "group", "", "join queue group `NAME`")
	fl.StringVar(&f.strategy, "strategy", "round-robin", "the group's `STRATEGY`: round-robin, least-loaded, first-available or random")
	f.id.add(fl)
	return cmd
}

func runReply(cmd *cobra.Command, f *replyFlags, patterns []string) error {
	if f.exec == "" {
		return usageErrorf("--exec is required")
	}
	strategy, err := eventbus.ParseGroupStrategy(f.strategy)
	if err != nil {
		return usageErrorf("--strategy: %v", strings.TrimPrefix(err.Error(), "eventbus: "))
	}
	for _, p := range patterns {
		if err := topic.ValidatePattern(p); err != nil {
			return err
		}
	}
	opts, err := f.id.options(cmd)
	if err != nil {
		return err
	}
	if f.register {
		if f.id.as == "" {
			return usageErrorf("--register needs --as COMPONENT")
		}
		opts = append(opts, eventbus.WithCapabilities(eventbus.Capabilities{Operations: patterns, MaxConcurrentTasks: 1}))
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errOut := &lockedWriter{w: cmd.ErrOrStderr()}
	c, err := dial(ctx, cmd, append(opts, reconnectNotices(errOut)...)...)
	if err != nil {
		return interrupted(ctx, err, true)
	}
	defer c.Close()
	s, err := c.SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: patterns, Group: f.group, Strategy: strategy, Responder: true,
		OnGap: func(g eventbus.Gap) { fmt.Fprintln(errOut, "eventbus: reconnected: "+g.String()) }})
	if err != nil {
		return interrupted(ctx, err, true)
	}
	if f.register {
		// Lifecycle requests get the library's answers: health-check and
		// get-capabilities; other operations are unsupported.
		if _, err := c.ServeLifecycle(ctx, func(context.Context, eventbus.LifecycleOp, []byte) ([]byte, error) {
			return nil, eventbus.ErrUnsupportedOperation
		}); err != nil {
			return err
		}
		if err := c.SetStatus(ctx, eventbus.StatusReady, nil); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-s.C:
			if !ok {
				return connectionLost(c, 0, 0)
			}
			if !m.CanReply() {
				continue
			}
			if err := answer(ctx, m, f.exec); err != nil {
				fmt.Fprintln(errOut, safeMessage(err.Error()))
			}
		}
	}
}

// answer runs command with m's payload as its input and replies with its
// output, or with an error reply if it fails.
func answer(ctx context.Context, m *eventbus.Message, command string) error {
	if !m.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, m.Deadline)
		defer cancel()
	}
	shell, flag := "/bin/sh", "-c"
	if runtime.GOOS == "windows" {
		shell, flag = "cmd", "/C"
	}
	x := exec.CommandContext(ctx, shell, flag, command)
	x.Stdin = bytes.NewReader(m.Payload)
	var stderr bytes.Buffer
	x.Stderr = &stderr
	out, err := x.Output()
	replyCtx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err == nil {
		return m.Reply(replyCtx, out)
	}
	code := "exit_status"
	if ctx.Err() != nil {
		code = "deadline"
	}
	msg := lastLine(stderr.String())
	var exitErr *exec.ExitError
	if msg == "" && errors.As(err, &exitErr) {
		msg = exitErr.Error()
	} else if msg == "" {
		msg = err.Error()
	}
	return m.ReplyWithError(replyCtx, &eventbus.ReplyError{Code: code, Message: msg, Category: "server"})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
