//go:build linux

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/transport"
)

// Environment of a helper process (proctest.RoleEnv picks the role): the
// broker reads its configuration from it.
const (
	envBuffer       = "EVENTBUS_BUFFER"        // message_buffer_size
	envPolicy       = "EVENTBUS_POLICY"        // slow_subscriber_policy
	envWriteTimeout = "EVENTBUS_WRITE_TIMEOUT" // write_timeout
)

func TestMain(m *testing.M) {
	if role := proctest.Role(); role != "" {
		os.Exit(runHelper(role, os.Args[1:]))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(proctest.Exit))
}

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
	case "collector":
		err = collectorMain(args)
	case "agent":
		err = agentMain(args)
	case "query":
		err = queryMain(args)
	case "emit":
		err = emitMain(args)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %d: %v\n", role, os.Getpid(), err)
		return 1
	}
	return 0
}

// say writes one line to stdout at once; the test reads it as it comes.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// --- payloads ---

// payload builds the body of message seq: "seq|crc|body", where crc is the
// CRC-32 of body and body's length and bytes depend on seq. With size > 0
// the whole payload is exactly size bytes.
func payload(seq int64, size int) []byte {
	n := 16 + int(seq*7919%240)
	head := 0
	if size > 0 {
		head = len(fmt.Sprintf("%d|%08x|", seq, 0))
		n = size - head
	}
	body := make([]byte, n)
	for i := range body {
		body[i] = 'a' + byte((int64(i)+seq)%26)
	}
	return fmt.Appendf(make([]byte, 0, head+n), "%d|%08x|%s", seq, crc32.ChecksumIEEE(body), body)
}

// parsePayload returns the sequence number of a payload built by payload
// and whether its checksum matches its body.
func parsePayload(p []byte) (seq int64, ok bool) {
	parts := strings.SplitN(string(p), "|", 3)
	if len(parts) != 3 {
		return -1, false
	}
	seq, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return -1, false
	}
	sum, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil {
		return seq, false
	}
	return seq, uint32(sum) == crc32.ChecksumIEEE([]byte(parts[2]))
}

// --- broker ---

// brokerMain serves a broker on -socket until SIGTERM, then shuts it down
// gracefully. Config comes from EVENTBUS_BUFFER and EVENTBUS_POLICY, and
// from the flags:
//
//	-policy FILE       access-control policy (Config.PolicyFile); default:
//	                   every topic public, and the component "operator"
//	                   admitted from this uid
//	-socket-mode MODE  socket file mode, octal (Config.SocketMode)
//	-agent-topic T     on each SIGUSR1 the broker's in-process client (the
//	                   agent) publishes one message on T and prints
//	                   "agent-published <seq>" once Flush succeeded, or
//	                   "agent-error <seq> <error>"
//	-agent-wait N      on each SIGUSR2 the in-process agent publishes a
//	                   correlated task and waits on the broker's tracker for
//	                   final results from N publishers (agentTask)
func brokerMain(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	policyFile := fs.String("policy", "", "access-control policy file (default: every topic public)")
	socketMode := fs.String("socket-mode", "", "socket file mode, octal (default 0600)")
	agentTopic := fs.String("agent-topic", "", "topic the in-process client publishes on at each SIGUSR1")
	agentWait := fs.Int("agent-wait", 0, "final publishers the in-process agent waits for after its task at each SIGUSR2")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Routing tests run with every topic public; the access-control tests
	// name a policy file.
	open, err := acl.Parse("open", fmt.Appendf(nil, "default_access: public\ncomponents:\n  operator:\n    uids: [%d]\n", os.Getuid()))
	if err != nil {
		return err
	}
	cfg := broker.Config{
		Policy:               open, // and the operator component, which sees every connection in stats
		SlowSubscriberPolicy: broker.SlowPolicy(os.Getenv(envPolicy)),
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if *policyFile != "" {
		cfg.Policy, cfg.PolicyFile = nil, *policyFile
	}
	if *socketMode != "" {
		m, err := strconv.ParseUint(*socketMode, 8, 32)
		if err != nil {
			return fmt.Errorf("-socket-mode %q: %w", *socketMode, err)
		}
		cfg.SocketMode = broker.Mode(m)
	}
	if v := os.Getenv(envBuffer); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: %w", envBuffer, err)
		}
		cfg.MessageBufferSize = n
	}
	if v := os.Getenv(envWriteTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %w", envWriteTimeout, err)
		}
		cfg.WriteTimeout = d
	}
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	ln, err := transport.Listen(*path, transport.WithMode(os.FileMode(b.Config().SocketMode)))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	var agent *eventbus.Client
	usr1, usr2 := make(chan os.Signal, 1), make(chan os.Signal, 1)
	if *agentTopic != "" || *agentWait > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		agent, err = eventbus.Dial(ctx, "", eventbus.InProcess(b), eventbus.WithName("agent"))
		cancel()
		if err != nil {
			return fmt.Errorf("in-process client: %w", err)
		}
		defer agent.Close()
	}
	if *agentTopic != "" {
		signal.Notify(usr1, syscall.SIGUSR1)
	}
	if *agentWait > 0 {
		signal.Notify(usr2, syscall.SIGUSR2)
	}
	say("ready")
	for seq := int64(0); ; seq++ {
		select {
		case <-usr1:
			agentPublish(agent, *agentTopic, seq)
		case <-usr2:
			agentTask(b, agent, *agentWait)
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-sig:
			if agent != nil {
				agent.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Shutdown(ctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			if err := <-served; !errors.Is(err, broker.ErrBrokerClosed) {
				return fmt.Errorf("serve returned %v; want ErrBrokerClosed", err)
			}
			say("stopped")
			return nil
		}
	}
}

// agentPublish publishes message seq on topicName from the broker's
// in-process client and reports the outcome on stdout.
func agentPublish(c *eventbus.Client, topicName string, seq int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Publish(ctx, topicName, payload(seq, 0))
	if err == nil {
		err = c.Flush(ctx)
	}
	if err != nil {
		say("agent-error %d %s", seq, oneLine(err))
		return
	}
	say("agent-published %d", seq)
}

// oneLine returns err's text on one line.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// identityFlags are the flags a client role uses to claim a component.
type identityFlags struct {
	component, token, tokenFile string
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.component, "component", "", "component to claim (default: none, anonymous)")
	fs.StringVar(&f.token, "token", "", "agent token to present")
	fs.StringVar(&f.tokenFile, "token-file", "", "file to read the agent token from")
}

// options returns the client options for the claim.
func (f *identityFlags) options() ([]eventbus.ClientOption, error) {
	var opts []eventbus.ClientOption
	if f.component != "" {
		opts = append(opts, eventbus.WithComponent(f.component))
	}
	token := []byte(f.token)
	if f.tokenFile != "" {
		var err error
		if token, err = acl.ReadTokenFile(f.tokenFile); err != nil {
			return nil, err
		}
	}
	if len(token) > 0 {
		opts = append(opts, eventbus.WithToken(token))
	}
	return opts, nil
}

// --- subscriber ---

// subMain subscribes to -patterns and prints one line per message:
//
//	msg <topic> <seq> <payload-len> <missed> <publisher-pid> <ok|bad>
//
// It ends after -count messages, after a message on -until, or on
// SIGTERM, printing "exit <received> <missed-total>".
func subMain(args []string) error {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	patterns := fs.String("patterns", "", "comma-separated patterns")
	count := fs.Int("count", 0, "exit after this many messages (0: no limit)")
	until := fs.String("until", "", "exit after a message on this topic")
	ackTopic := fs.String("ack-topic", "", "publish the number of messages received to this topic")
	ackEvery := fs.Int("ack-every", 100, "messages between acks")
	chanSize := fs.Int("chan", 1<<17, "subscription channel size")
	var id identityFlags
	id.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	idOpts, err := id.options()
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := eventbus.Dial(ctx, *path, append(idOpts, eventbus.WithBackoff(10*time.Millisecond, 200*time.Millisecond),
		eventbus.WithChannelSize(*chanSize), eventbus.WithName("sub"))...)
	if err != nil {
		return err
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, strings.Split(*patterns, ",")...)
	if err != nil {
		return err
	}
	say("subscribed")

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	var received, missed uint64
	ack := func() error {
		if *ackTopic == "" {
			return nil
		}
		return c.Publish(context.Background(), *ackTopic, strconv.AppendUint(nil, received, 10))
	}
	finish := func() error {
		fmt.Fprintf(out, "exit %d %d\n", received, missed)
		if err := out.Flush(); err != nil {
			return err
		}
		if *ackTopic == "" {
			return nil
		}
		if err := ack(); err != nil {
			return err
		}
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer fcancel()
		return c.Flush(fctx) // acks must reach the broker before Close
	}
	for {
		select {
		case <-sig:
			return finish()
		case m, ok := <-sub.C:
			if !ok {
				out.Flush()
				return errors.New("subscription channel closed")
			}
			received++
			missed += m.Missed
			seq, good := parsePayload(m.Payload)
			verdict := "ok"
			if !good {
				verdict = "bad"
			}
			fmt.Fprintf(out, "msg %s %d %d %d %d %s\n", m.Topic, seq, len(m.Payload), m.Missed, m.PublisherPID, verdict)
			if (*count > 0 && received >= uint64(*count)) || (*until != "" && m.Topic == *until) {
				return finish()
			}
			if *ackEvery > 0 && received%uint64(*ackEvery) == 0 {
				if err := ack(); err != nil {
					return fmt.Errorf("ack: %w", err)
				}
			}
			// Flush each line before this process could block: nothing
			// printed waits behind an idle subscriber.
			if len(sub.C) == 0 {
				if err := out.Flush(); err != nil {
					return err
				}
			}
		}
	}
}

// --- publisher ---

type pubFlags struct {
	path     string
	mode     string
	topics   string
	window   int
	ackTopic string
	marker   string
	topic    string
	interval time.Duration
}

// pubMain publishes according to -mode:
//
//	stream:   -topics t1:n1,t2:n2 interleaved, numbered per topic, then Flush;
//	          with -window, at most that many messages beyond the last ack
//	          read from -ack-topic; then one message on -marker if set.
//	ticker:   one message on -topic every -interval until SIGTERM; prints
//	          "ok <seq>" when Flush proves the broker took it, "err <seq> <kind>"
//	          when Publish or Flush failed.
//	markers:  like ticker, but prints "marker <seq>" and stops on SIGTERM.
//	oversize: checks that a payload of max+1 bytes is refused with
//	          ErrMessageTooLarge and that the same client then publishes a
//	          small and a maximal message that a subscriber acknowledges.
//	stats:    prints the broker's statistics as JSON.
func pubMain(args []string) error {
	var f pubFlags
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	fs.StringVar(&f.path, "socket", "", "socket path")
	fs.StringVar(&f.mode, "mode", "stream", "stream, ticker, markers, oversize or stats")
	fs.StringVar(&f.topics, "topics", "", "topic:count,...")
	fs.IntVar(&f.window, "window", 0, "most messages in flight beyond the last ack (0: no flow control)")
	fs.StringVar(&f.ackTopic, "ack-topic", "", "topic the subscriber acknowledges on")
	fs.StringVar(&f.marker, "marker", "", "topic of a final marker message")
	fs.StringVar(&f.topic, "topic", "events.process.lifecycle", "topic for ticker, markers and oversize")
	fs.DurationVar(&f.interval, "interval", 20*time.Millisecond, "ticker period")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var gen atomic.Int64 // reconnects so far
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := []eventbus.ClientOption{eventbus.WithBackoff(10*time.Millisecond, 200*time.Millisecond),
		eventbus.WithName("pub"), eventbus.WithReconnectHandler(func() { gen.Add(1) })}
	if f.mode == "stats" {
		opts = append(opts, eventbus.WithComponent("operator")) // anonymous peers see only themselves
	}
	c, err := eventbus.Dial(ctx, f.path, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	acks := newAckTracker()
	if f.ackTopic != "" {
		if _, err := c.SubscribeFunc(ctx, acks.handle, f.ackTopic); err != nil {
			return err
		}
	}
	switch f.mode {
	case "stream":
		return pubStream(c, &f, acks)
	case "ticker", "markers":
		return pubTicker(c, &f, &gen)
	case "oversize":
		return pubOversize(c, &f, acks)
	case "stats":
		s, err := c.Stats(ctx)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(s)
	}
	return fmt.Errorf("unknown mode %q", f.mode)
}

// ackTracker holds the highest count a subscriber acknowledged.
type ackTracker struct {
	n    atomic.Uint64
	wake chan struct{}
}

func newAckTracker() *ackTracker { return &ackTracker{wake: make(chan struct{}, 1)} }

func (a *ackTracker) handle(m *eventbus.Message) {
	n, err := strconv.ParseUint(string(m.Payload), 10, 64)
	if err != nil {
		return
	}
	for {
		cur := a.n.Load()
		if n <= cur || a.n.CompareAndSwap(cur, n) {
			break
		}
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until at least n messages are acknowledged.
func (a *ackTracker) waitFor(n uint64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for a.n.Load() < n {
		select {
		case <-a.wake:
		case <-deadline.C:
			return fmt.Errorf("no ack for %d messages within %v (last ack %d)", n, timeout, a.n.Load())
		}
	}
	return nil
}

type topicCount struct {
	topic string
	n     int64
}

func parseTopics(s string) ([]topicCount, error) {
	var out []topicCount
	for _, part := range strings.Split(s, ",") {
		name, count, ok := strings.Cut(part, ":")
		n, err := strconv.ParseInt(count, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad -topics entry %q: want topic:count", part)
		}
		out = append(out, topicCount{name, n})
	}
	return out, nil
}

func pubStream(c *eventbus.Client, f *pubFlags, acks *ackTracker) error {
	topics, err := parseTopics(f.topics)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var published uint64
	for seq := int64(0); ; seq++ {
		more := false
		for _, tc := range topics {
			if seq >= tc.n {
				continue
			}
			more = true
			if f.window > 0 && published >= uint64(f.window) {
				if err := acks.waitFor(published-uint64(f.window)+1, 20*time.Second); err != nil {
					return err
				}
			}
			if err := c.Publish(ctx, tc.topic, payload(seq, 0)); err != nil {
				return fmt.Errorf("publish %s #%d: %w", tc.topic, seq, err)
			}
			published++
		}
		if !more {
			break
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Flush(fctx); err != nil {
		return err
	}
	if f.marker != "" {
		if err := c.Publish(ctx, f.marker, payload(0, 0)); err != nil {
			return fmt.Errorf("publish marker: %w", err)
		}
		if err := c.Flush(fctx); err != nil {
			return err
		}
	}
	say("done %d", published)
	return nil
}

func pubTicker(c *eventbus.Client, f *pubFlags, gen *atomic.Int64) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	var ok, failed int
	for seq := int64(0); ; seq++ {
		select {
		case <-sig:
			say("summary %d %d", ok, failed)
			return nil
		case <-tick.C:
		}
		err := c.Publish(context.Background(), f.topic, payload(seq, 0))
		kind := "publish"
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = c.Flush(ctx)
			cancel()
			kind = "flush"
		}
		switch {
		case err == nil && f.mode == "markers":
			say("marker %d", seq)
			ok++
		case err == nil:
			say("ok %d %d", seq, gen.Load())
			ok++
		case errors.Is(err, eventbus.ErrClientClosed):
			return err
		default:
			if errors.Is(err, eventbus.ErrDisconnected) {
				kind += "-disconnected"
			}
			say("err %d %s %s", seq, kind, strings.ReplaceAll(err.Error(), "\n", "; "))
			failed++
		}
	}
}

func pubOversize(c *eventbus.Client, f *pubFlags, acks *ackTracker) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const limit = broker.DefaultMaxMessageSize
	err := c.Publish(ctx, f.topic, payload(0, limit+1))
	if !errors.Is(err, eventbus.ErrMessageTooLarge) {
		return fmt.Errorf("publish of %d bytes: got %v; want ErrMessageTooLarge", limit+1, err)
	}
	say("refused %s", err)
	if err := c.Flush(ctx); err != nil {
		return fmt.Errorf("flush after the refusal: %w", err)
	}
	for i, size := range []int{0, limit} {
		if err := c.Publish(ctx, f.topic, payload(int64(i+1), size)); err != nil {
			return fmt.Errorf("publish #%d (%d bytes) after the refusal: %w", i+1, size, err)
		}
		if err := c.Flush(ctx); err != nil {
			return fmt.Errorf("flush #%d: %w", i+1, err)
		}
		if err := acks.waitFor(uint64(i+1), 10*time.Second); err != nil {
			return fmt.Errorf("publish #%d did not reach the subscriber: %w", i+1, err)
		}
		say("acked %d", i+1)
	}
	say("done 2")
	return nil
}

// --- peer ---

// peerMain is a client that claims an identity (-component, -token,
// -token-file) and reports what the broker let it do, one line each:
//
//	dial ok | dial err forbidden=<bool> <error>
//	sub ok <pattern> | sub err <pattern> forbidden=<bool> <error>
//	pub ok <topic> <seq> | pub err <topic> <seq> forbidden=<bool> <error>
//	done
//
// It tries each -subscribe pattern as its own subscription, then publishes
// one message on each -publish topic in order (message i has sequence
// number i) and flushes after each, so every refusal is reported with its
// topic. A refused dial is reported, not an error: "done" follows it.
func peerMain(args []string) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	subscribe := fs.String("subscribe", "", "comma-separated patterns, each tried as its own subscription")
	publish := fs.String("publish", "", "comma-separated topics to publish on, in order")
	var id identityFlags
	id.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := id.options()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := eventbus.Dial(ctx, *path, append(opts, eventbus.WithName("peer"), eventbus.WithReconnect(false))...)
	if err != nil {
		say("dial err forbidden=%t %s", errors.Is(err, eventbus.ErrForbidden), oneLine(err))
		say("done")
		return nil
	}
	defer c.Close()
	say("dial ok")
	for _, p := range splitList(*subscribe) {
		if _, err := c.SubscribeFunc(ctx, func(*eventbus.Message) {}, p); err != nil {
			say("sub err %s forbidden=%t %s", p, errors.Is(err, eventbus.ErrForbidden), oneLine(err))
		} else {
			say("sub ok %s", p)
		}
	}
	for i, topicName := range splitList(*publish) {
		err := c.Publish(ctx, topicName, payload(int64(i), 0))
		if err == nil {
			err = c.Flush(ctx)
		}
		if err != nil {
			say("pub err %s %d forbidden=%t %s", topicName, i, errors.Is(err, eventbus.ErrForbidden), oneLine(err))
		} else {
			say("pub ok %s %d", topicName, i)
		}
	}
	say("done")
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
