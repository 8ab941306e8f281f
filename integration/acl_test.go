//go:build linux

package integration

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/internal/testutil"
)

// The access-control tests (docs/SECURITY.md §3) run a broker with a policy file and
// clients as separate processes. Run as root, the clients that must not be
// trusted run as otherUID, so the broker judges them by the uid the kernel
// reports, not by anything they say; otherwise those parts are skipped or
// run as the test's own uid, as each subtest says.

// otherUID is the unprivileged user (nobody) the untrusted clients run as.
const otherUID = 65534

const (
	aclTimeout  = 20 * time.Second // for one helper to finish its work
	policyTopic = "control.agent.policy"
)

// aclPolicy is the policy the tests run with, docs/SECURITY.md §3's levels for the
// topics they use. Placeholders: {{self}} is the test's uid (procmond and
// the agent are admitted from it), {{other}} the uid auditor is admitted
// from, {{token}} the agent token file, {{exe}} the executable netmond
// must run (the copy of the test binary the other user runs).
const aclPolicy = `# eventbus integration test policy
default_access: restricted
topics:
  - pattern: events.+.anomaly
    access: public
  - pattern: control.health.#
    access: public
  - pattern: events.process.#
    access: restricted
  - pattern: control.collector.config
    access: privileged
  - pattern: control.collector.lifecycle
    access: privileged
  - pattern: control.agent.policy
    access: privileged
components:
  procmond:
    uids: [{{self}}]
    publish: [events.process.#, control.health.#]
    deny_publish: [events.process.batch]
    subscribe: [control.collector.config]
  auditor:
    uids: [{{other}}]
    subscribe: [events.#, control.#]
  netmond:
    executables: [{{exe}}]
    publish: [events.network.#]
  agent:
    uids: [{{self}}]
agent:
  token_file: {{token}}
`

// aclFixture is one broker running aclPolicy, shared by the subtests.
type aclFixture struct {
	dir        string // 0755: every user may enter it
	socket     string // mode 0666
	policyFile string
	tokenFile  string // created by the broker, 0600, in a 0700 directory
	token      []byte
	broker     *proc
	// other runs a helper as otherUID; nil when the test is not root, and
	// the helper then runs as the test's own user.
	other    *runAs
	self     uint32
	otherUID uint32 // the uid auditor is admitted from
}

func TestAccessControl(t *testing.T) {
	f := newACLFixture(t)
	t.Run("ForeignUIDClaimRefused", f.testForeignUIDClaim)
	t.Run("PublishOutsideGrant", f.testPublishOutsideGrant)
	t.Run("WildcardSubscriberSeesOnlyPublic", f.testWildcardSubscriber)
	t.Run("OnlyAgentPublishesPolicy", f.testOnlyAgentPublishesPolicy)
	t.Run("WrongTokenRefused", f.testWrongToken)
}

func newACLFixture(t *testing.T) *aclFixture {
	t.Helper()
	f := &aclFixture{self: uint32(os.Geteuid())}
	dir := testutil.SocketDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.dir = dir
	f.socket = filepath.Join(dir, "s")
	f.tokenFile = filepath.Join(dir, "agent", "token")
	f.policyFile = filepath.Join(dir, "policy.yaml")
	f.otherUID = f.self
	netmondExe := "/nonexistent/helper.test"
	var err error
	if f.self == 0 {
		f.otherUID = otherUID
		f.other = &runAs{uid: otherUID, gid: otherUID, exe: copyTestBinary(t, dir), dir: dir}
		// The broker sees the path the kernel resolved.
		if netmondExe, err = filepath.EvalSymlinks(f.other.exe); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("running as uid %d, not root: the untrusted clients run as this uid too and ForeignUIDClaimRefused is skipped", f.self)
	}
	policy := strings.NewReplacer("{{self}}", fmt.Sprint(f.self), "{{other}}", fmt.Sprint(f.otherUID),
		"{{token}}", f.tokenFile, "{{exe}}", netmondExe).Replace(aclPolicy)
	if err := os.WriteFile(f.policyFile, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	f.broker = start(t, "broker", "broker", nil, "-socket", f.socket, "-policy", f.policyFile,
		"-socket-mode", "0666", "-agent-topic", policyTopic)
	f.broker.waitLine(t, 10*time.Second, "ready")
	if f.token, err = acl.ReadTokenFile(f.tokenFile); err != nil {
		t.Fatalf("the broker did not create the agent token file named by the policy: %v", err)
	}
	if fi, err := os.Stat(f.socket); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket %s has mode %v; want 0666 from -socket-mode", f.socket, fi.Mode().Perm())
	}
	return f
}

// copyTestBinary copies the test binary into dir, mode 0755, so another
// user can execute it: go test keeps it in a private directory.
func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exe := filepath.Join(dir, "helper.test")
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(exe, 0o755); err != nil { // beat the umask
		t.Fatal(err)
	}
	return exe
}

// who describes how a helper runs, for failure messages.
func (f *aclFixture) who(as *runAs) string {
	if as != nil {
		return fmt.Sprintf("uid %d", as.uid)
	}
	return fmt.Sprintf("uid %d", f.self)
}

// peer runs the peer role as as (nil: the test's user) and waits for it to
// finish.
func (f *aclFixture) peer(t *testing.T, name string, as *runAs, args ...string) *proc {
	t.Helper()
	p := startAs(t, as, name+" ("+f.who(as)+")", "peer", nil, append([]string{"-socket", f.socket}, args...)...)
	p.waitLine(t, aclTimeout, "done")
	p.waitExit(t, aclTimeout)
	return p
}

// sub runs the sub role as as and waits until it has subscribed.
func (f *aclFixture) sub(t *testing.T, name string, as *runAs, args ...string) *proc {
	t.Helper()
	p := startAs(t, as, name+" ("+f.who(as)+")", "sub", nil, append([]string{"-socket", f.socket}, args...)...)
	p.waitLine(t, aclTimeout, "subscribed")
	return p
}

// line returns the rest of the one line p printed that starts with prefix.
func line(t *testing.T, p *proc, prefix string) string {
	t.Helper()
	got := p.snapshot().linesWith(prefix)
	if len(got) != 1 {
		t.Fatalf("%s printed %d lines starting %q; want 1; all its lines: %q", p.name, len(got), prefix, p.snapshot().lines)
	}
	return strings.TrimPrefix(got[0], prefix)
}

// wantOK checks that p reports success for what (e.g. "dial", "pub
// events.process.lifecycle 0").
func wantOK(t *testing.T, p *proc, what string) {
	t.Helper()
	ok, bad := what+" ok", what+" err"
	if what != "dial" {
		verb, rest, _ := strings.Cut(what, " ")
		ok, bad = verb+" ok "+rest, verb+" err "+rest
	}
	s := p.snapshot()
	if !s.hasLine(ok) {
		t.Errorf("%s: want %q; got %q", p.name, ok, append(s.linesWith(bad), "")[0])
	}
}

// wantForbidden checks that p reports what refused with ErrForbidden and
// an error text containing each of mention, and returns the text.
func wantForbidden(t *testing.T, p *proc, what string, mention ...string) string {
	t.Helper()
	verb, rest, _ := strings.Cut(what, " ")
	prefix := verb + " err "
	if rest != "" {
		prefix += rest + " "
	}
	s := p.snapshot()
	got := s.linesWith(prefix)
	if len(got) != 1 {
		t.Errorf("%s: want %s refused (a line %q); its lines: %q", p.name, what, prefix+"forbidden=true ...", s.lines)
		return ""
	}
	text, isForbidden := strings.CutPrefix(strings.TrimPrefix(got[0], prefix), "forbidden=true ")
	if !isForbidden {
		t.Errorf("%s: %s refused, but the error does not match ErrForbidden: %s", p.name, what, got[0])
	}
	for _, m := range mention {
		if !strings.Contains(text, m) {
			t.Errorf("%s: %s refused with %q; want the error to mention %q", p.name, what, text, m)
		}
	}
	return text
}

// checkReceived checks that a subscriber received exactly the messages
// want (topic and sequence number, in order), intact, none missed, each
// from the publisher pid names for it.
func checkReceived(t *testing.T, p *proc, want []msg) {
	t.Helper()
	got := p.snapshot().msgs
	describe := func(ms []msg) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s#%d(pid %d)", m.topic, m.seq, m.pid))
		}
		return out
	}
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		same = got[i].topic == want[i].topic && got[i].seq == want[i].seq && got[i].pid == want[i].pid
	}
	if !same {
		t.Errorf("%s received %q;\nwant exactly %q", p.name, describe(got), describe(want))
	}
	for _, m := range got {
		if !m.ok || m.missed != 0 {
			t.Errorf("%s: message %s#%d: checksum ok %t, missed %d; want ok, 0", p.name, m.topic, m.seq, m.ok, m.missed)
		}
	}
}

// 1. A process claiming procmond from a uid the policy does not allow is
// refused at Dial with ErrForbidden naming the component and the uid; the
// same user connecting anonymously, and procmond from its own uid, are
// admitted (so the refusal comes from the policy, not the socket's mode).
// Likewise netmond, which the policy admits by executable only: admitted
// from the copy of the test binary it names, refused from the original.
func (f *aclFixture) testForeignUIDClaim(t *testing.T) {
	if f.other == nil {
		t.Skipf("needs root: the refused claim must come from a uid the policy does not name, run via SysProcAttr.Credential (test runs as uid %d)", f.self)
	}
	claim := f.peer(t, "procmond claim", f.other, "-component", "procmond")
	wantForbidden(t, claim, "dial", "procmond", fmt.Sprintf("uid %d not in [%d]", otherUID, f.self))

	anon := f.peer(t, "anonymous", f.other)
	wantOK(t, anon, "dial")

	own := f.peer(t, "procmond", nil, "-component", "procmond")
	wantOK(t, own, "dial")

	wantOK(t, f.peer(t, "netmond from its executable", f.other, "-component", "netmond"), "dial")
	wantForbidden(t, f.peer(t, "netmond from another executable", nil, "-component", "netmond"),
		"dial", "netmond", "executable", "not in")
}

// 2. A component publishing outside its grant is refused (Flush returns
// ErrForbidden naming the topic), while its allowed publishes before and
// after each refusal are accepted and delivered to a subscriber process.
func (f *aclFixture) testPublishOutsideGrant(t *testing.T) {
	sub := f.sub(t, "auditor sub", f.other, "-component", "auditor", "-patterns", "events.#,control.#",
		"-until", "control.health.status")
	topics := []string{
		"events.process.lifecycle",  // 0: granted
		"control.collector.config",  // 1: privileged: publisher is not the agent
		"events.process.metadata",   // 2: granted
		"events.network.connection", // 3: restricted, no grant
		"events.process.batch",      // 4: denied by deny_publish
		"control.health.heartbeat",  // 5: public
		"events.process.tree",       // 6: granted
		"control.health.status",     // 7: public; the subscriber's end marker
	}
	refused := map[int]string{1: "not the agent", 3: "no publish grant", 4: "denied it by"}
	pub := f.peer(t, "procmond pub", nil, "-component", "procmond", "-publish", strings.Join(topics, ","))
	wantOK(t, pub, "dial")
	var want []msg
	for i, tp := range topics {
		what := fmt.Sprintf("pub %s %d", tp, i)
		if reason, ok := refused[i]; ok {
			if text := wantForbidden(t, pub, what, tp, "denied", reason); text != "" {
				t.Logf("publish to %s refused: %s", tp, text)
			}
			continue
		}
		wantOK(t, pub, what)
		want = append(want, msg{topic: tp, seq: int64(i), pid: pub.pid()})
	}
	sub.waitExit(t, aclTimeout)
	checkReceived(t, sub, want)
}

// 3. '#' subscribed by an anonymous peer of another uid receives exactly
// the public messages of a mix of restricted, privileged and public ones
// the agent publishes; the auditor component, granted events.# and
// control.#, subscribed to '#' too, receives them all, so the restricted
// ones were delivered where the policy allows.
func (f *aclFixture) testWildcardSubscriber(t *testing.T) {
	const marker = "control.health.status"
	anon := f.sub(t, "anonymous # sub", f.other, "-patterns", "#", "-until", marker)
	auditor := f.sub(t, "auditor # sub", f.other, "-component", "auditor", "-patterns", "#", "-until", marker)
	topics := []string{
		"events.process.lifecycle",    // 0: restricted
		"control.health.heartbeat",    // 1: public
		"control.collector.config",    // 2: privileged
		"events.process.anomaly",      // 3: public
		"events.process.metadata",     // 4: restricted
		"control.collector.lifecycle", // 5: privileged
		"events.network.connection",   // 6: restricted (default_access)
		marker,                        // 7: public
	}
	public := map[string]bool{"control.health.heartbeat": true, "events.process.anomaly": true, marker: true}
	pub := f.peer(t, "agent pub", nil, "-component", "agent", "-token-file", f.tokenFile, "-publish", strings.Join(topics, ","))
	wantOK(t, pub, "dial")
	var all, open []msg
	for i, tp := range topics {
		wantOK(t, pub, fmt.Sprintf("pub %s %d", tp, i))
		m := msg{topic: tp, seq: int64(i), pid: pub.pid()}
		all = append(all, m)
		if public[tp] {
			open = append(open, m)
		}
	}
	anon.waitExit(t, aclTimeout)
	auditor.waitExit(t, aclTimeout)
	checkReceived(t, anon, open)
	checkReceived(t, auditor, all)
}

// 4. Only the agent publishes control.agent.policy: the broker's in-process
// client and a socket client claiming agent with the token from the
// broker's token file may, and the auditor component (another uid, granted
// subscribe) and an agent subscriber with the token receive exactly those;
// procmond may neither publish nor subscribe to it.
func (f *aclFixture) testOnlyAgentPublishesPolicy(t *testing.T) {
	subs := []*proc{
		f.sub(t, "auditor policy sub", f.other, "-component", "auditor", "-patterns", policyTopic, "-count", "3"),
		f.sub(t, "agent policy sub", nil, "-component", "agent", "-token-file", f.tokenFile, "-patterns", policyTopic, "-count", "3"),
	}
	waitAll := func(n int) {
		t.Helper()
		for _, s := range subs {
			s.waitFor(t, aclTimeout, fmt.Sprintf("receive %d messages on %s", n, policyTopic), func(st state) bool { return len(st.msgs) >= n })
		}
	}
	agentPublish := func() int64 {
		t.Helper()
		before := len(f.broker.snapshot().linesWith("agent-"))
		f.broker.Signal(t, syscall.SIGUSR1)
		f.broker.waitFor(t, aclTimeout, "report the in-process publish", func(s state) bool { return len(s.linesWith("agent-")) > before })
		last := f.broker.snapshot().linesWith("agent-")[before]
		var seq int64
		if _, err := fmt.Sscanf(last, "agent-published %d", &seq); err != nil {
			t.Fatalf("the broker's in-process client (the agent) could not publish %s: %s", policyTopic, last)
		}
		return seq
	}

	first := agentPublish()
	waitAll(1)

	agent := f.peer(t, "agent pub", nil, "-component", "agent", "-token-file", f.tokenFile, "-publish", policyTopic)
	wantOK(t, agent, "dial")
	wantOK(t, agent, "pub "+policyTopic+" 0")
	waitAll(2)

	pm := f.peer(t, "procmond", nil, "-component", "procmond", "-subscribe", policyTopic, "-publish", policyTopic)
	wantOK(t, pm, "dial")
	wantForbidden(t, pm, "sub "+policyTopic, policyTopic, "denied")
	wantForbidden(t, pm, "pub "+policyTopic+" 0", policyTopic, "denied", "not the agent")

	last := agentPublish()
	for _, s := range subs {
		s.waitExit(t, aclTimeout)
		checkReceived(t, s, []msg{
			{topic: policyTopic, seq: first, pid: f.broker.pid()},
			{topic: policyTopic, seq: 0, pid: agent.pid()},
			{topic: policyTopic, seq: last, pid: f.broker.pid()},
		})
	}
}

// 5. A client claiming agent with a wrong token (or none) is refused at
// Dial with ErrForbidden, from the agent's uid and from another, and
// neither the error it gets nor the broker's log reveals the right token.
// The right token still works afterwards.
func (f *aclFixture) testWrongToken(t *testing.T) {
	// Same length and alphabet as the right token, every character wrong.
	wrong := bytes.Map(func(r rune) rune {
		if r == '0' {
			return '1'
		}
		return '0'
	}, f.token)
	secrets := []string{string(f.token), hex.EncodeToString(f.token)}
	for i := 0; i+16 <= len(f.token); i += 8 { // any 16-byte window of it
		secrets = append(secrets, string(f.token[i:i+16]))
	}
	check := func(p *proc, reason string) {
		t.Helper()
		text := wantForbidden(t, p, "dial", "agent", reason)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s: the refusal reveals (part of) the agent token: %q", p.name, text)
				break
			}
		}
	}
	check(f.peer(t, "wrong token", nil, "-component", "agent", "-token", string(wrong)), "wrong agent token")
	check(f.peer(t, "no token", nil, "-component", "agent"), "no agent token")
	if f.other != nil {
		check(f.peer(t, "wrong token", f.other, "-component", "agent", "-token", string(wrong)), "wrong agent token")
		// The token is not enough: the agent's uid must fit too.
		check(f.peer(t, "right token", f.other, "-component", "agent", "-token", string(f.token)),
			fmt.Sprintf("uid %d not in [%d]", otherUID, f.self))
	}
	right := f.peer(t, "right token", nil, "-component", "agent", "-token-file", f.tokenFile)
	wantOK(t, right, "dial")

	log := f.broker.Stderr.Tail(1 << 20)
	if !strings.Contains(log, "wrong agent token") {
		t.Errorf("the broker's log does not record the refused agent claims; log:\n%s", log)
	}
	if i := slices.IndexFunc(secrets, func(s string) bool { return strings.Contains(log, s) }); i >= 0 {
		t.Errorf("the broker's log reveals (part of) the agent token")
	}
}
