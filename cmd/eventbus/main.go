// Command eventbus runs an eventbus broker and talks to one: publish,
// subscribe, correlation history, workflows and waits, statistics, topic
// and access-policy checks. It is a thin layer over the
// daemoneye.dev/eventbus packages: it parses flags, calls
// the library and formats what comes back.
//
// Exit status: 0 on success, 1 on a runtime error, 2 on a usage error or an
// invalid topic or pattern. Errors are printed once, as "eventbus: <message>".
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus/transport"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var started bool
	root := newRootCmd(&started)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	usage := !started // cobra refused the command line before any command ran
	if msg := message(err); msg != "" {
		fmt.Fprintln(stderr, msg)
	}
	if usage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitCode(err)
}

// newRootCmd builds the command tree. *started is set once cobra has
// parsed the command line and a command begins to run, so that errors
// before that are known to be usage errors.
func newRootCmd(started *bool) *cobra.Command {
	root := &cobra.Command{
		Use:   "eventbus",
		Short: "local publish/subscribe event bus",
		Long: `eventbus runs a local publish/subscribe broker over a Unix domain socket
and talks to one: publish, subscribe, query the broker's correlation
history and workflows, wait for results, statistics, topic and policy
checks.

The broker enforces an access policy (docs/SECURITY.md): a client is
anonymous, and may use only public topics, unless it claims a component
with --as COMPONENT that the broker admits from the kernel's view of it.

The socket is --socket, else $EVENTBUS_SOCKET, else
$XDG_RUNTIME_DIR/eventbus/eventbus.sock, else /tmp/eventbus-<uid>/eventbus.sock.

Exit status: 0 on success, 1 on error, 2 on a usage error or an invalid
topic or pattern.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRun:  func(*cobra.Command, []string) { *started = true },
	}
	root.PersistentFlags().String("socket", transport.DefaultPath(), "broker socket `PATH`")
	root.AddCommand(
		newBrokerCmd(),
		newPubCmd(),
		newSubCmd(),
		newRequestCmd(),
		newCollectorsCmd(),
		newControlCmd(),
		newReplyCmd(),
		newHistoryCmd(),
		newTimelineCmd(),
		newWorkflowsCmd(),
		newWorkflowCmd(),
		newWaitCmd(),
		newStatsCmd(),
		newTopicCmd(),
		newPolicyCmd(),
		newVersionCmd(),
		newBenchCmd(),
	)
	return root
}

// socketPath is the --socket flag's value.
func socketPath(cmd *cobra.Command) string {
	path, _ := cmd.Flags().GetString("socket") // declared on the root: cannot fail
	return path
}
