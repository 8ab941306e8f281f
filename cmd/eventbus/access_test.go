//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/internal/testutil"
)

// TestBrokerDefaultAccess checks the broker's second line and the agent
// token it creates beside the socket.
func TestBrokerDefaultAccess(t *testing.T) {
	t.Parallel()
	b, sock := startBroker(t)
	token := filepath.Join(filepath.Dir(sock), "agent.token")
	want := "access policy: built-in (docs/SECURITY.md §3); agent token file: " + token + "\n"
	if lines := strings.SplitAfter(b.Stderr.String(), "\n"); len(lines) < 2 || lines[1] != want {
		t.Errorf("broker's stderr:\n%s\nwant second line %q", b.Stderr.String(), want)
	}
	fi, err := os.Stat(token)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v; want 0600", token, fi.Mode())
	}
}

// TestDefaultPolicyDelivery is the quickstart: procmond publishes its
// lifecycle events, the agent receives them with the token found beside
// the socket.
func TestDefaultPolicyDelivery(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "--as", "agent", "--count", "1", "--timeout", "10s", "events.process.#")
	waitForSubscribers(t, sock, "events.process.#", 1, sub)
	r := runCLI(t, "", "pub", "--socket", sock, "--as", "procmond", "events.process.lifecycle", `{"pid":4242}`)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("pub --as procmond = %d, stderr %q; want 0", r.code, r.stderr)
	}
	if code := sub.Wait(t, waitLimit); code != 0 || sub.Stdout.String() != "events.process.lifecycle {\"pid\":4242}\n" {
		t.Errorf("sub --as agent = %d, stdout %q, stderr %q; want 0 and the message", code, sub.Stdout.String(), sub.Stderr.String())
	}
}

func TestAnonymousPublishDenied(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"events.process.lifecycle", "x"},
			"eventbus: publish #1 to events.process.lifecycle refused: acl: publish to events.process.lifecycle denied: restricted topic, publisher is not a registered component\n"},
		{[]string{"--as", "procmond", "control.collector.config", "x"},
			"eventbus: publish #1 to control.collector.config refused: acl: publish to control.collector.config denied: privileged topic, publisher is not the agent\n"},
		{[]string{"--as", "procmond", "events.network.lifecycle", "x"},
			"eventbus: publish #1 to events.network.lifecycle refused: acl: publish to events.network.lifecycle denied: restricted topic, component procmond has no publish grant for it\n"},
	}
	for _, tt := range tests {
		r := runCLI(t, "", append([]string{"pub", "--socket", sock}, tt.args...)...)
		if r.code != 1 || r.stderr != tt.want {
			t.Errorf("pub %v = %d, stderr %q; want 1, %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	// Public topics stay open to anonymous peers.
	for _, topic := range []string{"control.health.heartbeat", "events.process.anomaly"} {
		if r := runCLI(t, "", "pub", "--socket", sock, topic, "x"); r.code != 0 {
			t.Errorf("anonymous pub %s = %d, stderr %q; want 0", topic, r.code, r.stderr)
		}
	}
}

// TestAnonymousSubFiltered checks that '#' delivers a public topic to an
// anonymous subscriber but not a restricted one, which the agent gets.
func TestAnonymousSubFiltered(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	anon := startCLI(t, "sub", "--socket", sock, "--count", "1", "--timeout", "10s", "#")
	agent := startCLI(t, "sub", "--socket", sock, "--as", "agent", "--count", "2", "--timeout", "10s", "#")
	waitForSubscribers(t, sock, "#", 2, anon)
	// Each pub has returned only once the broker processed its message,
	// so a delivered lifecycle event would reach anon before the heartbeat.
	for _, args := range [][]string{
		{"--as", "procmond", "events.process.lifecycle", "secret"},
		{"control.health.heartbeat", "alive"},
	} {
		if r := runCLI(t, "", append([]string{"pub", "--socket", sock}, args...)...); r.code != 0 {
			t.Fatalf("pub %v = %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if code := anon.Wait(t, waitLimit); code != 0 || anon.Stdout.String() != "control.health.heartbeat alive\n" {
		t.Errorf("anonymous sub '#' = %d, stdout %q, stderr %q; want only the heartbeat", code, anon.Stdout.String(), anon.Stderr.String())
	}
	want := "events.process.lifecycle secret\ncontrol.health.heartbeat alive\n"
	if code := agent.Wait(t, waitLimit); code != 0 || agent.Stdout.String() != want {
		t.Errorf("agent sub '#' = %d, stdout %q; want %q", code, agent.Stdout.String(), want)
	}
}

func TestSubDenied(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"events.process.lifecycle"},
			"eventbus: subscribe [events.process.lifecycle]: acl: subscribe to events.process.lifecycle denied: restricted topic, subscriber is not a registered component\n"},
		{[]string{"--as", "procmond", "control.agent.#"},
			"eventbus: subscribe [control.agent.#]: acl: subscribe to control.agent.# denied: no topic it matches may be delivered (e.g. control.agent: restricted topic, component procmond has no subscribe grant for it)\n"},
	}
	for _, tt := range tests {
		r := runCLI(t, "", append([]string{"sub", "--socket", sock, "--timeout", "5s"}, tt.args...)...)
		if r.code != 1 || r.stderr != tt.want {
			t.Errorf("sub %v = %d, stderr %q; want 1, %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

// TestAgentTokenRefused presents a wrong token, an unreadable and a
// missing token file; the right token is never printed.
func TestAgentTokenRefused(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	right, err := os.ReadFile(filepath.Join(filepath.Dir(sock), "agent.token"))
	if err != nil {
		t.Fatal(err)
	}
	wrongToken := strings.Repeat("0123456789abcdef", 4)
	wrong := writeFile(t, "wrong.token", wrongToken+"\n", 0o600)
	open := writeFile(t, "open.token", string(right), 0o644)
	missing := filepath.Join(t.TempDir(), "missing.token")
	tests := []struct {
		file, want string
	}{
		{wrong, "eventbus: acl: component agent refused: wrong agent token\n"},
		{open, "eventbus: --as agent: acl: token file " + open + ": mode 0644 has group or other permission bits; want 0600\n"},
		{missing, "eventbus: --as agent: acl: token file " + missing + ": lstat " + missing + ": no such file or directory\n"},
	}
	for _, tt := range tests {
		r := runCLI(t, "", "pub", "--socket", sock, "--as", "agent", "--token-file", tt.file, "control.agent.policy", "x")
		if r.code != 1 || r.stderr != tt.want {
			t.Errorf("pub --as agent --token-file %s = %d, stderr %q; want 1, %q", filepath.Base(tt.file), r.code, r.stderr, tt.want)
		}
		for _, tok := range []string{strings.TrimSpace(string(right)), wrongToken} {
			if strings.Contains(r.stdout+r.stderr, tok) {
				t.Errorf("pub --token-file %s printed a token", filepath.Base(tt.file))
			}
		}
	}
	// The right token, from its default place beside the socket.
	if r := runCLI(t, "", "pub", "--socket", sock, "--as", "agent", "control.agent.policy", "x"); r.code != 0 {
		t.Errorf("pub --as agent = %d, stderr %q; want 0", r.code, r.stderr)
	}
}

// TestBrokerPolicyFile runs a broker on a policy file that admits procmond
// from another uid only, and a token file named by flag.
func TestBrokerPolicyFile(t *testing.T) {
	t.Parallel()
	other := strconv.Itoa(os.Geteuid() + 1)
	policy := writeFile(t, "policy.yaml", "components:\n  procmond:\n    uids: ["+other+"]\n    publish: [events.process.#]\n", 0o600)
	token := filepath.Join(t.TempDir(), "tok", "agent.token")
	b, sock := startBroker(t, "--policy", policy, "--agent-token-file", token)
	want := "access policy: " + policy + "; agent token file: " + token + "\n"
	if lines := strings.SplitAfter(b.Stderr.String(), "\n"); len(lines) < 2 || lines[1] != want {
		t.Errorf("broker's stderr:\n%s\nwant second line %q", b.Stderr.String(), want)
	}
	r := runCLI(t, "", "pub", "--socket", sock, "--as", "procmond", "events.process.lifecycle", "x")
	want = "eventbus: acl: component procmond refused: uid " + strconv.Itoa(os.Geteuid()) + " not in [" + other + "]\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("pub --as procmond = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	r = runCLI(t, "", "pub", "--socket", sock, "--as", "agent", "--token-file", token, "events.process.lifecycle", "x")
	if r.code != 0 {
		t.Errorf("pub --as agent --token-file = %d, stderr %q; want 0", r.code, r.stderr)
	}
}

// TestBrokerPolicyFromConfig checks the config file's policy_file and
// agent_token_file.
func TestBrokerPolicyFromConfig(t *testing.T) {
	t.Parallel()
	policy := writeFile(t, "policy.yaml", "default_access: public\n", 0o600)
	token := filepath.Join(t.TempDir(), "agent.token")
	cfg := writeFile(t, "eventbus.yaml", "policy_file: "+policy+"\nagent_token_file: "+token+"\n", 0o600)
	b, sock := startBroker(t, "--config", cfg)
	want := "access policy: " + policy + "; agent token file: " + token + "\n"
	if lines := strings.SplitAfter(b.Stderr.String(), "\n"); len(lines) < 2 || lines[1] != want {
		t.Errorf("broker's stderr:\n%s\nwant second line %q", b.Stderr.String(), want)
	}
	if r := runCLI(t, "", "pub", "--socket", sock, "events.anything", "x"); r.code != 0 {
		t.Errorf("anonymous pub under default_access: public = %d, stderr %q; want 0", r.code, r.stderr)
	}
}

func TestBrokerBadPolicy(t *testing.T) {
	t.Parallel()
	policy := writeFile(t, "bad.yaml", "default_access: public\ntopics:\n  - pattern: events.+x\n    access: public\n", 0o600)
	sock := filepath.Join(testutil.SocketDir(t), "eb.sock")
	r := runCLI(t, "", "broker", "--socket", sock, "--policy", policy)
	want := "eventbus: acl: policy " + policy + " line 3: topics[0].pattern: invalid pattern \"events.+x\": segment \"+x\": wildcard '+' must be a whole segment\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("broker --policy bad = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("broker created %s despite a bad policy", sock)
	}
}

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	valid := writeFile(t, "valid.yaml", `default_access: restricted
topics:
  - pattern: events.process.anomaly
    access: public
components:
  procmond:
    uids: [0]
    executables: [/usr/bin/procmond]
    publish: [events.process.#]
    deny_publish: [events.process.batch]
agent:
  token_file: /run/eventbus/agent.token
`, 0o600)
	invalid := writeFile(t, "invalid.yaml", "default_access: restricted\ncomponents:\n  procmond:\n    uids: [root]\n", 0o600)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"valid", []string{"--policy", valid}, 0, []string{
			"policy " + valid + "\n",
			"default_access: restricted",
			"events.process.anomaly  public      " + valid + ":3\n",
			"procmond: uids [0], gids any, executables [/usr/bin/procmond]\n",
			"    deny_publish    events.process.batch  " + valid + ":10\n",
			"    publish         events.process.#      " + valid + ":9\n",
			"agent token: /run/eventbus/agent.token\n",
		}, ""},
		{"built-in", nil, 0, []string{
			"policy default\n",
			"  events.+.anomaly                public      default\n",
			"  control.agent.policy            privileged  default\n",
			"procmond: uids [",
			"(eventbus broker --socket /s/eb.sock uses --agent-token-file, default /s/agent.token)\n",
		}, ""},
		{"invalid", []string{"--policy", invalid}, 1, nil,
			"eventbus: acl: policy " + invalid + " line 4: components.procmond.uids[0]: \"root\" is not a uid (0 to 4294967295)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, "", append([]string{"policy", "check", "--socket", "/s/eb.sock"}, tt.args...)...)
			if r.code != tt.code || r.stderr != tt.stderr {
				t.Errorf("policy check = %d, stderr %q; want %d, %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("policy check output lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestPolicyExplain(t *testing.T) {
	t.Parallel()
	uid := strconv.Itoa(os.Geteuid())
	policy := writeFile(t, "policy.yaml", `components:
  procmond:
    uids: [`+uid+`]
    publish: [events.process.#]
    deny_publish: [events.process.batch]
`, 0o600)
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--as", "procmond", "publish", "events.process.lifecycle"}, 0, []string{
			"publish events.process.lifecycle by component procmond (uid " + uid + ", ",
			"): allowed\n",
			"  level:  restricted, from topic events.process.# restricted (default)\n",
			"  grant:  procmond publish events.process.# (default)\n",
		}},
		{[]string{"publish", "events.process.lifecycle"}, 1, []string{
			"by anonymous peer", "): denied\n", "reason: restricted topic, publisher is not a registered component\n",
		}},
		{[]string{"--as", "procmond", "publish", "control.collector.config"}, 1, []string{
			"): denied\n", "level:  privileged, from topic control.collector.config privileged (default)",
			"reason: privileged topic, publisher is not the agent\n",
		}},
		{[]string{"--as", "agent", "publish", "control.collector.config"}, 0, []string{
			"by agent (uid " + uid, "): allowed\n", "grant:  agent publish # (default)\n",
		}},
		{[]string{"--as", "procmond", "--uid", "4000000000", "publish", "events.process.lifecycle"}, 1, []string{
			"hello: acl: component procmond refused: uid 4000000000 not in [",
			"the broker would refuse this peer's connection",
		}},
		{[]string{"--as", "procmond", "--sid", "S-1-5-21-1-2-3-1001", "publish", "events.process.lifecycle"}, 1, []string{
			"hello: acl: component procmond refused: the OS reports no uid or gid for this peer, only sid S-1-5-21-1-2-3-1001",
			"publish events.process.lifecycle by component procmond (sid S-1-5-21-1-2-3-1001, pid 0): allowed\n",
		}},
		{[]string{"subscribe", "#"}, 0, []string{"subscribe # by anonymous peer", "): filter\n", "each delivery is checked"}},
		{[]string{"--as", "agent", "subscribe", "events.process.#"}, 0, []string{"): allow\n"}},
		{[]string{"--as", "procmond", "subscribe", "control.agent.#"}, 1, []string{
			"): deny\n", "reason: no topic it matches may be delivered (e.g. control.agent: restricted topic, component procmond has no subscribe grant for it)\n",
		}},
		{[]string{"--as", "procmond", "subscribe", "control.collector.config"}, 0, []string{
			"subscribe control.collector.config by component procmond", "): allowed\n",
			"grant:  procmond subscribe control.collector.config (default)\n",
		}},
		{[]string{"--policy", policy, "--as", "procmond", "publish", "events.process.batch"}, 1, []string{
			"): denied\n", "level:  restricted, from default_access (no topic rule matches)\n",
			"grant:  procmond deny_publish events.process.batch (" + policy + ":5)\n",
		}},
		{[]string{"--policy", policy, "--as", "procmond", "publish", "events.process.tree"}, 0, []string{
			"): allowed\n", "grant:  procmond publish events.process.# (" + policy + ":4)\n",
		}},
		{[]string{"--as", "procmond", "publish", "$sys.stats"}, 1, []string{"): denied\n", "the broker's own"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, "", append([]string{"policy", "explain"}, tt.args...)...)
			if r.code != tt.code || r.stderr != "" {
				t.Errorf("policy explain = %d, stderr %q; want %d\n%s", r.code, r.stderr, tt.code, r.stdout)
			}
			for _, want := range tt.want {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("policy explain output lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

// TestBrokerUnsafeTokenDir starts a broker whose socket directory others
// can write: the default token file is unusable there, so the broker runs
// without one and says so.
func TestBrokerUnsafeTokenDir(t *testing.T) {
	t.Parallel()
	dir := testutil.SocketDir(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "eb.sock")
	b := startCLI(t, "broker", "--socket", sock, "--shared-socket-dir") // else the socket itself is refused there
	waitForBroker(t, b, sock)
	for _, want := range []string{
		"no agent token: only the in-process client is the agent (set --agent-token-file)",
		"mode 0777 lets group or others write",
		"access policy: built-in (docs/SECURITY.md §3); agent token file: none (only the in-process client is the agent)\n",
	} {
		if !strings.Contains(b.Stderr.String(), want) {
			t.Errorf("broker's stderr lacks %q:\n%s", want, b.Stderr.String())
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "agent.token")); err == nil {
		t.Errorf("broker created agent.token in a directory others can write")
	}
}

// TestBenchExternalAs: bench against a broker with the built-in policy is
// refused anonymously (the bench topic is restricted) and runs as the
// agent; --as without --external is a usage error.
func TestBenchExternalAs(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	args := []string{"bench", "--external", "--socket", sock, "--msgs", "2000", "--timeout", "20s"}
	if r := runCLI(t, "", args...); r.code == 0 || !strings.Contains(r.stderr, "denied") {
		t.Errorf("anonymous bench --external = %d, stderr %q; want a failure naming the denial", r.code, r.stderr)
	}
	r := runCLI(t, "", append(args, "--as", "agent")...)
	if r.code != 0 || !strings.Contains(r.stdout, "median of 1: delivered") {
		t.Errorf("bench --external --as agent = %d, stdout %q, stderr %q; want 0 and a summary", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", "bench", "--as", "agent", "--msgs", "10"); r.code != 2 || !strings.Contains(r.stderr, "--as is for --external") {
		t.Errorf("bench --as without --external = %d, stderr %q; want 2 and the reason", r.code, r.stderr)
	}
}
