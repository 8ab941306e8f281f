//go:build linux

package loss

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/transport"
)

func TestMain(m *testing.M) {
	proctest.RunRole(map[string]func([]string) error{"broker": brokerMain, "sub": subMain, "pub": pubMain})
	goleak.VerifyTestMain(m, goleak.Cleanup(proctest.Exit))
}

// say writes one line to stdout at once; the test reads it as it comes.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// Broker limits of the helper: queues deep enough that no subscriber of
// these tests ever overflows one, so that a confirmation always means the
// message was written to the subscriber's socket, never that its drop was
// counted. (The subscribers report Missed, and the tests check it is 0.)
const (
	brokerQueueMessages = 1 << 20
	brokerQueueBytes    = 256 << 20
)

// brokerMain serves a broker on -socket, every topic public, until it is
// killed or gets SIGTERM. It prints "ready" once it listens.
// -write-timeout sets write_timeout (default the broker's).
func brokerMain(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
	writeTimeout := fs.Duration("write-timeout", 0, "write_timeout (0: the default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	open, err := acl.Parse("open", []byte("default_access: public\n"))
	if err != nil {
		return err
	}
	b, err := broker.New(broker.Config{
		Policy:                   open,
		MessageBufferSize:        brokerQueueMessages,
		MaxPendingBytes:          brokerQueueBytes,
		MaxPendingBytesAnonymous: brokerQueueBytes,
		WriteTimeout:             *writeTimeout,
		Logger:                   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return err
	}
	ln, err := transport.Listen(*path)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	say("ready")
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-sig:
		b.Close()
		if err := <-served; !errors.Is(err, broker.ErrBrokerClosed) {
			return fmt.Errorf("serve returned %v; want ErrBrokerClosed", err)
		}
		return nil
	}
}
