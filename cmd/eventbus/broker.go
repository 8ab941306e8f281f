package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/transport"
)

// shutdownTimeout bounds the graceful drain after SIGINT/SIGTERM; then
// the remaining connections are cut.
const shutdownTimeout = 5 * time.Second

type brokerFlags struct {
	config         string
	maxConnections int
	buffer         int
	maxMessageSize int
	slowPolicy     string
	noStats        bool
	sharedDir      bool
	verbose        bool
	policy         string
	agentTokenFile string
}

func newBrokerCmd() *cobra.Command {
	var f brokerFlags
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "run a broker until SIGINT or SIGTERM",
		Long: `Run a broker on the socket until SIGINT or SIGTERM, then shut down
gracefully (at most 5s) and remove the socket file.

Settings come from --config FILE (YAML, see broker.Config), then from
the flags given on the command line, which override the file. The socket
is --socket if given, else the file's socket_path, else the default.

Access control (docs/SECURITY.md): --policy FILE (policy_file) is the
policy; without one the broker runs the built-in policy (docs/SECURITY.md §3), which
admits the components procmond, netmond, fsmond, perfmond and agent from
this user's uid and root and lets anonymous clients use only the public
topics (events.+.anomaly, control.health.#). A client proves it is the
agent with the token in --agent-token-file (agent_token_file; the policy's
agent.token_file takes precedence), default agent.token beside the socket
(on Windows %AppData%\eventbus\agent.token); the broker creates it if it
is missing, readable by this user only (mode 0600; on Windows an ACL for
this user, SYSTEM and Administrators). The second line the broker prints
says which policy and token file are in force.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBroker(cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML config `FILE`")
	fl.IntVar(&f.maxConnections, "max-connections", broker.DefaultMaxConnections, "most client connections at once (max_connections)")
	fl.IntVar(&f.buffer, "buffer", broker.DefaultMessageBufferSize, "messages queued per subscriber (message_buffer_size)")
	fl.IntVar(&f.maxMessageSize, "max-message-size", broker.DefaultMaxMessageSize, "largest payload in `BYTES` (max_message_size)")
	fl.StringVar(&f.slowPolicy, "slow-policy", string(broker.SlowDrop), "when a subscriber's queue is full: drop or disconnect (slow_subscriber_policy)")
	fl.BoolVar(&f.sharedDir, "shared-socket-dir", false, "allow a socket directory the group or others may write (shared_socket_dir)")
	fl.BoolVar(&f.noStats, "no-stats", false, "turn off per-topic statistics and latency histograms (enable_statistics: false)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log debug messages")
	fl.StringVar(&f.policy, "policy", "", "access policy `FILE` (policy_file; default: the built-in policy, docs/SECURITY.md §3)")
	fl.StringVar(&f.agentTokenFile, "agent-token-file", "", "agent token `PATH`, created if missing (agent_token_file; default agent.token beside the socket; on Windows %AppData%\\eventbus\\agent.token)")
	return cmd
}

// brokerConfig loads --config and applies the flags the user set over it.
func brokerConfig(cmd *cobra.Command, f *brokerFlags) (broker.Config, error) {
	var cfg broker.Config
	if f.config != "" {
		var err error
		if cfg, err = broker.LoadConfig(f.config); err != nil {
			return cfg, err
		}
	}
	fl := cmd.Flags()
	setIf(fl, "max-connections", &cfg.MaxConnections, f.maxConnections)
	setIf(fl, "buffer", &cfg.MessageBufferSize, f.buffer)
	setIf(fl, "max-message-size", &cfg.MaxMessageSize, f.maxMessageSize)
	setIf(fl, "slow-policy", &cfg.SlowSubscriberPolicy, broker.SlowPolicy(f.slowPolicy))
	if fl.Changed("no-stats") {
		on := !f.noStats
		cfg.EnableStatistics = &on
	}
	setIf(fl, "shared-socket-dir", &cfg.SharedSocketDir, f.sharedDir)
	setIf(fl, "policy", &cfg.PolicyFile, f.policy)
	setIf(fl, "agent-token-file", &cfg.AgentTokenFile, f.agentTokenFile)
	if fl.Changed("socket") || cfg.SocketPath == "" {
		cfg.SocketPath = socketPath(cmd)
	}
	return cfg, nil
}

// configFlags names the flag that sets each config field.
var configFlags = map[string]string{
	"max_connections":        "max-connections",
	"message_buffer_size":    "buffer",
	"max_message_size":       "max-message-size",
	"slow_subscriber_policy": "slow-policy",
}

// flagError attributes a config error to the flag that set the field, if
// the user gave it: "--slow-policy: ..." rather than "config: ...".
func flagError(cmd *cobra.Command, err error) error {
	var ce *broker.ConfigError
	if !errors.As(err, &ce) || ce.File != "" {
		return err
	}
	if name, ok := configFlags[ce.Field]; ok && cmd.Flags().Changed(name) {
		return usageErrorf("--%s: %s", name, ce.Msg)
	}
	return err
}

// setIf sets *dst to v if the flag was given on the command line.
func setIf[T any](fl *pflag.FlagSet, name string, dst *T, v T) {
	if fl.Changed(name) {
		*dst = v
	}
}

// softMemoryLimit is the Go runtime's soft memory limit for a broker run
// by this command, unless GOMEMLIMIT sets one: near it the collector runs
// sooner, so the garbage a burst of large queries leaves does not push
// the process's memory past what its limits account for
// (docs/SECURITY.md §7). It is no hard cap: the broker never fails for it.
const softMemoryLimit = 192 << 20

func runBroker(cmd *cobra.Command, f *brokerFlags) error {
	cfg, err := brokerConfig(cmd, f)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	log := newLogger(cmd.ErrOrStderr(), f.verbose)
	cfg.Logger = log
	b, err := newBroker(cfg, log)
	if err != nil {
		return flagError(cmd, err)
	}
	ln, err := transport.Listen(cfg.SocketPath, b.Config().ListenOptions()...)
	if err != nil {
		b.Close()
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "eventbus broker %s listening on %s (pid %d)\n", broker.Version, ln.Addr(), os.Getpid())
	fmt.Fprintln(cmd.ErrOrStderr(), accessLine(b))

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	select {
	case err := <-served: // the listener failed under us
		b.Close()
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills at once
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown timed out; remaining connections cut", "err", err)
	}
	if err := <-served; !errors.Is(err, broker.ErrBrokerClosed) {
		return err
	}
	log.Info("broker stopped")
	return nil
}

// newBroker creates the broker. Unless a token file is configured, it
// uses defaultTokenFile (a policy's agent.token_file still takes
// precedence); if that default is unusable, for example a socket in a
// directory others can write, the broker runs without an agent token and
// says why, rather than fail for a file nobody asked for.
func newBroker(cfg broker.Config, log *slog.Logger) (*broker.Broker, error) {
	if cfg.AgentTokenFile != "" {
		return broker.New(cfg)
	}
	def := cfg
	def.AgentTokenFile = defaultTokenFile(cfg.SocketPath)
	b, err := broker.New(def)
	if err == nil || def.AgentTokenFile == "" {
		return b, err
	}
	b, err2 := broker.New(cfg)
	if err2 != nil {
		return nil, err // the same problem, or one the token file hid
	}
	log.Warn("no agent token: only the in-process client is the agent (set --agent-token-file)", "err", err)
	return b, nil
}

// accessLine says which policy and agent token file b enforces.
func accessLine(b *broker.Broker) string {
	policy := b.Config().PolicyFile
	if policy == "" {
		policy = "built-in (docs/SECURITY.md §3)"
	}
	token := b.Policy().TokenFile()
	if token == "" {
		token = b.Config().AgentTokenFile
	}
	if token == "" {
		token = "none (only the in-process client is the agent)"
	}
	return fmt.Sprintf("access policy: %s; agent token file: %s", policy, token)
}

// newLogger logs text to w at Info, or Debug when verbose.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
