package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/topic"
	"daemoneye.dev/eventbus/transport"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "check an access policy and explain its decisions",
		Long: `Work with the broker's access policy (docs/SECURITY.md) without a broker:
check a policy file and print its effective rules, or explain whether an
identity may publish or subscribe to a topic and which rule decides.

Without --policy both use the built-in policy (docs/SECURITY.md §3), as a broker run
by this user would.`,
	}
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyExplainCmd())
	return cmd
}

// loadPolicy reads file, or returns the built-in policy of a broker run by
// this user when file is "".
func loadPolicy(file string) (*acl.Policy, error) {
	if file == "" {
		self, _ := transport.Self() // as the broker's inProcessPeer
		return acl.DefaultFor(self), nil
	}
	return acl.Load(file)
}

func newPolicyCheckCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "check [--policy FILE]",
		Short: "validate a policy and print its effective rules",
		Long: `Validate the policy in --policy FILE (default: the built-in policy) and
print its effective rules: the default level, the topic rules and each
component's admission requirements and grants, most specific first (the
order in which they take precedence).

Exit status: 0 if the policy is valid, 1 if not (the error names the file,
line and field).`,
		Args: exactArgs(),
		RunE: safeRunE(func(cmd *cobra.Command, _ []string) error {
			p, err := loadPolicy(file)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprint(out, safeLines(p.String()))
			if p.TokenFile() == "" {
				if def := defaultTokenFile(socketPath(cmd)); def != "" {
					fmt.Fprintln(out, safeMessage(fmt.Sprintf("(eventbus broker --socket %s uses --agent-token-file, default %s)", socketPath(cmd), def)))
				}
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&file, "policy", "", "policy `FILE` (default: the built-in policy, docs/SECURITY.md §3)")
	return cmd
}

type explainFlags struct {
	policy string
	as     string
	uid    uint32
	gid    uint32
	sid    string
	exe    string
}

func newPolicyExplainCmd() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain [--policy FILE] --as COMPONENT [--uid N] ACTION TOPIC",
		Short: "say whether an identity may publish or subscribe to a topic, and why",
		Long: `Explain the policy's decision for ACTION (publish or subscribe) on TOPIC by
a peer claiming --as COMPONENT (omit it for an anonymous peer) with uid
--uid, gid --gid and executable --exe; or, with --sid, a Windows peer of
that user SID (which has no uid or gid). The agent is taken to hold the
agent token. Prints allowed or denied, the topic's level and the rule that
set it, and the grant that decided.

For subscribe, TOPIC may be a pattern: the answer is allow (everything it
matches may be delivered), filter (the subscription is accepted and each
delivery checked, so only allowed topics arrive) or deny (refused).

The claim is also checked against the component's entry (uids, gids,
sids, executables): a peer the broker would refuse at hello can do nothing.

Exit status: 0 allowed (allow or filter), 1 denied, 2 on a usage error or
an invalid topic.`,
		Args: exactArgs("ACTION", "TOPIC"),
		RunE: safeRunE(func(cmd *cobra.Command, args []string) error {
			return runExplain(cmd, &f, args[0], args[1])
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "policy `FILE` (default: the built-in policy, docs/SECURITY.md §3)")
	fl.StringVar(&f.as, "as", "", "the `COMPONENT` the peer claims (default: none, an anonymous peer)")
	fl.Uint32Var(&f.uid, "uid", uint32(os.Geteuid()), "the peer's uid (default this process's euid)")
	fl.Uint32Var(&f.gid, "gid", uint32(os.Getegid()), "the peer's gid (default this process's egid)")
	self, _ := transport.Self()
	fl.StringVar(&f.sid, "sid", self.SID, "the peer's Windows user `SID`, e.g. S-1-5-18 (default on Windows this process's; elsewhere none)")
	fl.StringVar(&f.exe, "exe", "", "the peer's executable `PATH`, for components whose entry lists executables")
	return cmd
}

func runExplain(cmd *cobra.Command, f *explainFlags, actionName, name string) error {
	var action acl.Action
	switch actionName {
	case "publish":
		action = acl.Publish
		if err := topic.Validate(name); err != nil {
			return err
		}
	case "subscribe":
		action = acl.Subscribe
		if err := topic.ValidatePattern(name); err != nil {
			return err
		}
	default:
		return usageErrorf("ACTION must be publish or subscribe, not %q", actionName)
	}
	p, err := loadPolicy(f.policy)
	if err != nil {
		return err
	}
	if f.sid != "" { // a Windows peer: no uid or gid
		f.uid, f.gid = ^uint32(0), ^uint32(0)
	}
	id := acl.Identity{
		Component:  f.as,
		UID:        f.uid,
		GID:        f.gid,
		SID:        f.sid,
		Exe:        f.exe,
		Agent:      f.as == acl.AgentComponent,
		Registered: f.as != "" && slices.Contains(p.Components(), f.as),
	}
	out := cmd.OutOrStdout()
	refused := admission(p, f)
	if refused != nil {
		fmt.Fprintf(out, "hello: %s\nthe broker would refuse this peer's connection; were it admitted:\n", safeMessage(refused.Error()))
	}
	allowed := explain(out, p, id, action, name)
	if !allowed || refused != nil {
		return &exitStatus{code: exitError}
	}
	return nil
}

// admission returns the error the broker's hello would refuse f's claim
// with, or nil. The agent is assumed to present the right token.
func admission(p *acl.Policy, f *explainFlags) error {
	if f.as == "" {
		return nil
	}
	peer := transport.Peer{UID: f.uid, GID: f.gid, SID: f.sid}
	var token []byte
	if f.as == acl.AgentComponent {
		token = []byte("policy explain: the agent's token")
		p = p.WithAgentToken(token)
	}
	_, err := p.Admit(peer, f.exe, f.as, token)
	return err
}

// explain prints the decision for id and reports whether it allows.
func explain(out io.Writer, p *acl.Policy, id acl.Identity, action acl.Action, name string) bool {
	if action == acl.Publish && topic.IsReserved(name) {
		fmt.Fprintf(out, "publish %s by %s: denied\n  reason: topics beginning with '$' are the broker's own; clients cannot publish to them\n", name, shownIdentity(id))
		return false
	}
	if action == acl.Publish || !topic.IsWildcard(name) {
		e := p.Explain(id, action, name)
		e.Identity = shownIdentity(id)
		fmt.Fprint(out, safeLines(e.String()))
		return e.Allowed
	}
	d, err := p.CheckSubscribe(id, name)
	fmt.Fprintf(out, "subscribe %s by %s: %s\n", name, shownIdentity(id), d)
	switch d {
	case acl.Allow:
		fmt.Fprintln(out, "  every topic it matches may be delivered")
	case acl.Filter:
		fmt.Fprintln(out, "  accepted; each delivery is checked, so only the topics this peer may receive arrive")
	default:
		if de, ok := errors.AsType[*acl.DeniedError](err); ok {
			if de.Rule != nil {
				fmt.Fprintf(out, "  rule:   %s\n", safeMessage(de.Rule.String()))
			}
			fmt.Fprintf(out, "  reason: %s\n", safeMessage(de.Reason))
		} else if err != nil {
			fmt.Fprintf(out, "  reason: %s\n", safeMessage(err.Error()))
		}
	}
	return d != acl.Deny
}

// shownIdentity is id with its strings escaped, for printing only: the
// claim and executable come from flags and may hold anything.
func shownIdentity(id acl.Identity) acl.Identity {
	id.Component, id.SID, id.Exe = safe(id.Component), safe(id.SID), safe(id.Exe)
	return id
}
