//go:build linux

package coord

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
	proctest.RunRole(map[string]func([]string) error{"broker": brokerMain, "member": memberMain, "requester": requesterMain, "silent": silentMain, "echo": echoMain, "monitor": monitorMain})
	goleak.VerifyTestMain(m, goleak.Cleanup(proctest.Exit))
}

// say writes one line to stdout at once, unbuffered: a line printed
// before a process is SIGKILLed is in the pipe, and the test reads it.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// Broker queues deep enough that no test here ever overflows one: a
// request is never dropped on its way to a responder.
const (
	brokerQueueMessages = 1 << 20
	brokerQueueBytes    = 256 << 20
)

// brokerMain serves a broker on -socket, every topic public, until it is
// killed or gets SIGTERM. It prints "ready" once it listens.
func brokerMain(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	path := fs.String("socket", "", "socket path")
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
