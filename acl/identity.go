package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"daemoneye.dev/eventbus/topic"
	"daemoneye.dev/eventbus/transport"
)

// ErrRefused matches every [*RefusedError] with errors.Is.
var ErrRefused = errors.New("acl: refused")

// Identity is a peer as the broker verified it at hello.
type Identity struct {
	Component  string // the admitted claim; "" for an anonymous peer
	UID, GID   uint32 // from the kernel; ^uint32(0) on Windows
	PID        int    // from the kernel
	SID        string // the Windows user's SID from the kernel; "" elsewhere
	Exe        string // executable path where the OS reveals it, else ""
	Agent      bool   // proved the agent credential, or is the broker's in-process client
	Registered bool   // a component the policy admitted (the agent included)
}

// registered reports whether id counts as a registered component.
func (id Identity) registered() bool { return id.Registered || id.Agent }

// Class is what the policy's decisions for an identity depend on: two
// identities of one Class are allowed and denied the same actions on the
// same topics. The broker routes by it, so that a publish never visits the
// subscriptions of a class that may not read its topic.
type Class struct {
	grantee    string
	registered bool
	agent      bool
}

// Class returns id's Class.
func (id Identity) Class() Class {
	return Class{grantee: id.grantee(), registered: id.registered(), agent: id.Agent}
}

// Identity returns an identity of class c, for asking the policy about it.
func (c Class) Identity() Identity {
	id := Identity{Component: c.grantee, Agent: c.agent, Registered: c.registered}
	if !c.registered {
		id.Component = ""
	}
	return id
}

// String names the class in messages and statistics.
func (c Class) String() string {
	switch {
	case c.agent:
		return "agent"
	case c.registered:
		return "component " + c.grantee
	}
	return "anonymous"
}

// grantee is the component whose grants apply to id.
func (id Identity) grantee() string {
	if id.Agent {
		return AgentComponent
	}
	return id.Component
}

// String returns the name used in messages and output.
func (id Identity) String() string {
	who := "anonymous peer"
	switch {
	case id.Agent:
		who = "agent"
	case id.Component != "":
		who = "component " + id.Component
	}
	if id.SID != "" {
		return fmt.Sprintf("%s (sid %s, pid %d)", who, id.SID, id.PID)
	}
	return fmt.Sprintf("%s (uid %d, gid %d, pid %d)", who, id.UID, id.GID, id.PID)
}

// InProcessIdentity is the identity of the broker's in-process client: the
// agent, with peer as the broker's own process.
func InProcessIdentity(peer transport.Peer) Identity {
	exe, _ := os.Executable()
	return Identity{
		Component: AgentComponent, UID: peer.UID, GID: peer.GID, PID: peer.PID, SID: peer.SID,
		Exe: exe, Agent: true, Registered: true,
	}
}

// RefusedError is a component claim that does not fit the policy. Its
// message names the component and the mismatch, never the agent token.
type RefusedError struct {
	Component string // the claim, as the peer sent it
	Peer      transport.Peer
	Exe       string
	Reason    string // e.g. "uid 1000 not in [0]", "sid S-1-5-19 not in [S-1-5-18]"
}

// Error returns the message.
func (e *RefusedError) Error() string {
	name := e.Component
	if !validComponent(name) {
		name = strconv.Quote(name)
	}
	return fmt.Sprintf("acl: component %s refused: %s", name, e.Reason)
}

// Is reports whether target is ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// validComponent reports whether name is a valid component name: one topic
// segment, 1-64 bytes of a-z 0-9 - _, as the broker's hello requires.
func validComponent(name string) bool {
	return !strings.ContainsAny(name, ".$") && topic.Validate(name) == nil
}

// Admit checks the component a peer claims at hello against the policy and
// returns the identity to use for the connection.
//
// An empty claim admits the peer as anonymous (not registered; token is
// ignored). The claim "agent" needs token to equal the configured agent
// token (compared in constant time over SHA-256 digests, so neither the
// token nor its length leaks); it is refused when no token is configured.
// Every claim must then fit its component's entry, each list only where
// the policy gives it: the peer's user, and exe in executables. The user of
// a peer with a SID (Windows) is checked against sids, and that of any
// other peer against uids and gids (peer.UID in uids, peer.GID in gids).
// An entry that names users only of the other kind refuses the peer: a
// Windows peer claiming a component with uids or gids but no sids, a Unix
// peer claiming one with sids but no uids or gids. A policy listing
// executables refuses a peer whose exe is unknown (""). Each of these fails
// closed. An unknown component is refused. The error is a [*RefusedError].
func (p *Policy) Admit(peer transport.Peer, exe, claim string, token []byte) (Identity, error) {
	id := Identity{UID: peer.UID, GID: peer.GID, PID: peer.PID, SID: peer.SID, Exe: exe}
	if claim == "" {
		return id, nil
	}
	refuse := func(format string, args ...any) (Identity, error) {
		return Identity{}, &RefusedError{Component: claim, Peer: peer, Exe: exe, Reason: fmt.Sprintf(format, args...)}
	}
	if !validComponent(claim) {
		return refuse("invalid component name: want 1-64 bytes of a-z 0-9 - _")
	}
	c := p.comps[claim]
	if c == nil {
		return refuse("not in the policy (components: %v)", p.names)
	}
	if claim == AgentComponent {
		if reason := p.checkToken(token); reason != "" {
			return refuse("%s", reason)
		}
		id.Agent = true
	}
	if claim != AgentComponent && len(c.uids) == 0 && len(c.gids) == 0 && len(c.sids) == 0 && len(c.executables) == 0 {
		// Nothing to check the claim against: any peer could make it.
		return refuse("the policy names no uids, gids, sids or executables for it, so no peer can prove it")
	}
	if reason := c.fits(peer, exe); reason != "" {
		return refuse("%s", reason)
	}
	id.Component, id.Registered = claim, true
	return id, nil
}

// unknownID is the uid and gid of a peer whose OS reports none.
const unknownID = ^uint32(0)

// checkToken returns why token is not the agent token, or "".
func (p *Policy) checkToken(token []byte) string {
	switch {
	case p.tokenSum == nil:
		return "no agent token is configured (agent.token_file)"
	case len(token) == 0:
		return "no agent token presented"
	}
	sum := sha256.Sum256(token)
	if subtle.ConstantTimeCompare(sum[:], p.tokenSum[:]) != 1 {
		return "wrong agent token"
	}
	return ""
}

// fits returns why peer and exe do not fit c, or "".
func (c *component) fits(peer transport.Peer, exe string) string {
	if reason := c.fitsUser(peer); reason != "" {
		return reason
	}
	switch {
	case len(c.executables) == 0:
		return ""
	case exe == "":
		return fmt.Sprintf("executable unknown (the OS did not reveal it; on Linux a broker reads another user's /proc/<pid>/exe only as root or with CAP_SYS_PTRACE), policy requires one of %v", c.executables)
	case !slices.Contains(c.executables, filepath.Clean(exe)):
		return fmt.Sprintf("executable %s not in %v", exe, c.executables)
	}
	return ""
}

// fitsUser returns why peer's user does not fit c, or "": a peer with a
// SID (Windows) by sids, any other by uids and gids.
func (c *component) fitsUser(peer transport.Peer) string {
	byID := len(c.uids) > 0 || len(c.gids) > 0
	if peer.SID != "" {
		switch {
		case len(c.sids) > 0 && !slices.Contains(c.sids, peer.SID):
			return fmt.Sprintf("sid %s not in %v", peer.SID, c.sids)
		case len(c.sids) == 0 && byID:
			return fmt.Sprintf("the OS reports no uid or gid for this peer, only sid %s, and the policy admits the component by uids or gids but names no sids", peer.SID)
		}
		return ""
	}
	switch {
	case !byID && len(c.sids) > 0:
		return fmt.Sprintf("the policy admits the component only by sids %v (Windows users), and the OS reports no SID for this peer", c.sids)
	case peer.UID == unknownID && byID:
		// A peer with neither a uid nor a SID: matching unknownID would
		// admit every such peer.
		return "the OS reports no uid or gid for this peer, so the policy cannot admit it by uid or gid"
	case len(c.uids) > 0 && !slices.Contains(c.uids, peer.UID):
		return fmt.Sprintf("uid %d not in %v", peer.UID, c.uids)
	case len(c.gids) > 0 && !slices.Contains(c.gids, peer.GID):
		return fmt.Sprintf("gid %d not in %v", peer.GID, c.gids)
	}
	return ""
}
