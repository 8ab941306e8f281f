package crossos

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
)

// helperTimeout bounds each step a helper waits for (dial, subscribe,
// flush, shutdown): a failure bound, never a delay.
const helperTimeout = 30 * time.Second

// testSDDL is the pipe security descriptor the broker helper configures
// (Config.PipeSDDL): the owner and SYSTEM only, narrower than the default.
// Unix sockets ignore it.
const testSDDL = "D:P(A;;GA;;;OW)(A;;GA;;;SY)"

func runHelper(role string, args []string) int {
	var err error
	switch role {
	case "broker":
		err = brokerMain(args)
	case "sub":
		err = subMain(args)
	case "pub":
		err = pubMain(args)
	case "peer":
		err = peerMain(args)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %d: %v\n", role, os.Getpid(), err)
		return 1
	}
	return 0
}

// say writes one line to stdout; the test reads it as it comes.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// payload is message seq's body on topicName; check tells it was not
// mixed up with another's.
func payload(topicName string, seq int) []byte {
	return fmt.Appendf(nil, "%s#%d", topicName, seq)
}

// --- broker ---

// brokerMain serves a broker on -socket through Broker.ListenAndServe, with
// the policy in EVENTBUS_CROSSOS_POLICY (empty: the built-in policy) and
// the pipe descriptor testSDDL. It prints "ready" once a client of its own
// has connected, and shuts down gracefully when its stdin ends or reads
// "stop", printing "stopped". For each "stats" line it reads it prints
// the connections of Broker.Stats, then "stats end":
//
//	conn <pid> <uid> <sid|-> <component|-> <exe, Go-quoted>
func brokerMain(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path or pipe name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := broker.Config{
		SocketPath: *path,
		PipeSDDL:   testSDDL,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if y := os.Getenv(envPolicy); y != "" {
		p, err := acl.Parse("policy", []byte(y))
		if err != nil {
			return err
		}
		cfg.Policy = p
	}
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- b.ListenAndServe() }()
	if err := awaitListening(*path, served); err != nil {
		b.Close()
		return err
	}
	say("ready")

	stop := make(chan struct{})
	go func() { // ends with the process if stdin never does
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() && sc.Text() != "stop" {
			if sc.Text() == "stats" {
				for _, c := range b.Stats().ConnectionList {
					say("conn %d %d %s %s %q", c.PID, c.UID, orDash(c.SID), orDash(c.Component), c.Exe)
				}
				say("stats end")
			}
		}
		close(stop)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, broker.ErrBrokerClosed) {
		return fmt.Errorf("ListenAndServe returned %v; want ErrBrokerClosed", err)
	}
	say("stopped")
	return nil
}

// awaitListening dials path until a handshake succeeds, so that "ready"
// means clients can connect. It fails if ListenAndServe returns first.
// ListenAndServe signals no moment of listening, so this polls.
func awaitListening(path string, served <-chan error) error {
	deadline := time.Now().Add(helperTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := eventbus.Dial(ctx, path, eventbus.WithName("probe"), eventbus.WithReconnect(false))
		cancel()
		if err == nil {
			return c.Close()
		}
		select {
		case serr := <-served:
			return fmt.Errorf("ListenAndServe: %w", serr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker not reachable at %s within %v: %w", path, helperTimeout, err)
		}
	}
}

// dial connects to the broker at path as name, claiming component if set.
func dial(path, name, component string) (*eventbus.Client, error) {
	opts := []eventbus.ClientOption{eventbus.WithName(name), eventbus.WithReconnect(false)}
	if component != "" {
		opts = append(opts, eventbus.WithComponent(component))
	}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	return eventbus.Dial(ctx, path, opts...)
}

// --- subscriber ---

// subMain subscribes to -patterns (comma-separated) and prints
// "subscribed", then one line per message,
//
//	msg <topic> <seq> <publisher-pid> <publisher-component|-> <ok|bad>
//
// ("bad": the payload is not the one published as <seq> on <topic>), and
// "exit <received>" after a message on -until.
func subMain(args []string) error {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path or pipe name")
	patterns := fs.String("patterns", "", "comma-separated patterns")
	until := fs.String("until", "", "exit after a message on this topic")
	component := fs.String("component", "", "component to claim")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dial(*path, "sub", *component)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	sub, err := c.Subscribe(ctx, strings.Split(*patterns, ",")...)
	if err != nil {
		return err
	}
	say("subscribed")
	out := bufio.NewWriter(os.Stdout)
	received := 0
	for m := range sub.C {
		received++
		seq, verdict := -1, "bad"
		if i := strings.LastIndexByte(string(m.Payload), '#'); i >= 0 {
			seq, _ = strconv.Atoi(string(m.Payload[i+1:]))
			if string(payload(m.Topic, seq)) == string(m.Payload) {
				verdict = "ok"
			}
		}
		fmt.Fprintf(out, "msg %s %d %d %s %s\n", m.Topic, seq, m.PublisherPID, orDash(m.PublisherComponent), verdict)
		if m.Topic == *until {
			fmt.Fprintf(out, "exit %d\n", received)
			return out.Flush()
		}
		if len(sub.C) == 0 {
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
	out.Flush()
	return errors.New("subscription channel closed before the -until message")
}

// --- publisher ---

// pubMain publishes -count messages on each of -topics, interleaved
// (seq 0 on every topic, then seq 1, ...), flushes, then publishes one
// message on -marker and flushes again. It prints "pid <own pid>" after
// dialing and "done <messages>" at the end.
func pubMain(args []string) error {
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path or pipe name")
	topics := fs.String("topics", "", "comma-separated topics")
	count := fs.Int("count", 0, "messages per topic")
	marker := fs.String("marker", "", "topic of the final message")
	component := fs.String("component", "", "component to claim")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dial(*path, "pub", *component)
	if err != nil {
		return err
	}
	defer c.Close()
	say("pid %d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	n := 0
	for seq := range *count {
		for _, t := range strings.Split(*topics, ",") {
			if err := c.Publish(ctx, t, payload(t, seq)); err != nil {
				return fmt.Errorf("publish %s #%d: %w", t, seq, err)
			}
			n++
		}
	}
	if err := c.Flush(ctx); err != nil {
		return err
	}
	if err := c.Publish(ctx, *marker, payload(*marker, 0)); err != nil {
		return fmt.Errorf("publish marker: %w", err)
	}
	if err := c.Flush(ctx); err != nil {
		return err
	}
	say("done %d", n)
	return nil
}

// --- peer ---

// peerMain claims -component (if set), reports whether the broker admitted
// it, then publishes one message on each of -publish and reports each
// outcome after a flush:
//
//	dial ok | dial err forbidden=<bool> <error>
//	pub ok <topic> | pub err <topic> forbidden=<bool> <error>
//	done
func peerMain(args []string) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path or pipe name")
	component := fs.String("component", "", "component to claim")
	publish := fs.String("publish", "", "comma-separated topics")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dial(*path, "peer", *component)
	if err != nil {
		say("dial err forbidden=%t %s", errors.Is(err, eventbus.ErrForbidden), oneLine(err))
		say("done")
		return nil
	}
	defer c.Close()
	say("dial ok")
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	for _, t := range strings.Split(*publish, ",") {
		if t == "" {
			continue
		}
		err := c.Publish(ctx, t, payload(t, 0))
		if err == nil {
			err = c.Flush(ctx)
		}
		if err != nil {
			say("pub err %s forbidden=%t %s", t, errors.Is(err, eventbus.ErrForbidden), oneLine(err))
		} else {
			say("pub ok %s", t)
		}
	}
	say("done")
	return nil
}
