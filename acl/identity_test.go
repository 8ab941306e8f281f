package acl

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/transport"
)

func TestAdmit(t *testing.T) {
	token := []byte(strings.Repeat("ab", 32))
	p := mustParse(t, testPolicyYAML).WithAgentToken(token)
	root := transport.Peer{UID: 0, GID: 0, PID: 10}
	user := transport.Peer{UID: 1000, GID: 1000, PID: 11}
	const noID = ^uint32(0)
	winUser := transport.Peer{UID: noID, GID: noID, PID: 13, SID: "S-1-5-21-1-2-3-1001"}
	winOther := transport.Peer{UID: noID, GID: noID, PID: 14, SID: "S-1-5-21-1-2-3-1002"}
	tests := []struct {
		name  string
		peer  transport.Peer
		exe   string
		claim string
		token []byte
		want  Identity // when err is ""
		err   string
	}{
		{name: "anonymous", peer: user, exe: "/usr/bin/sh", want: Identity{UID: 1000, GID: 1000, PID: 11, Exe: "/usr/bin/sh"}},
		{name: "anonymous ignores token", peer: user, token: []byte("x"), want: Identity{UID: 1000, GID: 1000, PID: 11}},
		{name: "component fits", peer: root, exe: testExe, claim: "procmond",
			want: Identity{Component: "procmond", PID: 10, Exe: testExe, Registered: true}},
		{name: "uid mismatch", peer: user, exe: testExe, claim: "procmond",
			err: "acl: component procmond refused: uid 1000 not in [0]"},
		{name: "gid mismatch", peer: transport.Peer{UID: 0, GID: 5}, exe: testExe, claim: "procmond",
			err: "acl: component procmond refused: gid 5 not in [0]"},
		{name: "exe mismatch", peer: root, exe: testAbs("/tmp/procmond"), claim: "procmond",
			err: "acl: component procmond refused: executable " + testAbs("/tmp/procmond") + " not in [" + testExe + "]"},
		{name: "exe unknown", peer: root, claim: "procmond",
			err: "acl: component procmond refused: executable unknown"},
		{name: "no uid from the OS (windows pipe)", peer: transport.Peer{UID: ^uint32(0), GID: ^uint32(0), PID: 12}, claim: "netmond",
			err: "acl: component netmond refused: the OS reports no uid or gid for this peer"},
		{name: "windows peer anonymous", peer: winUser, want: Identity{UID: noID, GID: noID, PID: 13, SID: winUser.SID}},
		{name: "windows peer sid listed", peer: winUser, claim: "netmond",
			want: Identity{Component: "netmond", UID: noID, GID: noID, PID: 13, SID: winUser.SID, Registered: true}},
		{name: "windows peer sid not listed", peer: winOther, claim: "netmond",
			err: "acl: component netmond refused: sid S-1-5-21-1-2-3-1002 not in [S-1-5-21-1-2-3-1001]"},
		{name: "windows peer, component admitted by uid only", peer: winUser, exe: testExe, claim: "procmond",
			err: "acl: component procmond refused: the OS reports no uid or gid for this peer, only sid S-1-5-21-1-2-3-1001, and the policy admits the component by uids or gids but names no sids"},
		{name: "no exe requirement", peer: user, claim: "netmond",
			want: Identity{Component: "netmond", UID: 1000, GID: 1000, PID: 11, Registered: true}},
		{name: "unknown component", peer: root, claim: "evilmond",
			err: "acl: component evilmond refused: not in the policy (components: [agent netmond procmond])"},
		{name: "invalid claim", peer: root, claim: "Evil\nName",
			err: `acl: component "Evil\nName" refused: invalid component name`},
		{name: "agent with token", peer: user, claim: "agent", token: token,
			want: Identity{Component: "agent", UID: 1000, GID: 1000, PID: 11, Agent: true, Registered: true}},
		{name: "agent wrong token", peer: user, claim: "agent", token: []byte(strings.Repeat("ab", 31) + "ac"),
			err: "acl: component agent refused: wrong agent token"},
		{name: "agent short token", peer: user, claim: "agent", token: []byte("ab"),
			err: "acl: component agent refused: wrong agent token"},
		{name: "agent missing token", peer: user, claim: "agent",
			err: "acl: component agent refused: no agent token presented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Admit(tt.peer, tt.exe, tt.claim, tt.token)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) || !errors.Is(err, ErrRefused) {
					t.Fatalf("Admit = %+v, %v; want error %q matching ErrRefused", got, err, tt.err)
				}
				if strings.Contains(err.Error(), string(token)) {
					t.Errorf("error %q reveals the token", err)
				}
				var re *RefusedError
				if !errors.As(err, &re) || re.Component != tt.claim || re.Peer != tt.peer {
					t.Errorf("RefusedError = %+v; want component %q, peer %v", re, tt.claim, tt.peer)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Admit = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestAdmitUnconstrainedComponent: a component with nothing to check a
// claim against cannot be claimed at all, or any peer could claim it.
func TestAdmitUnconstrainedComponent(t *testing.T) {
	p := mustParse(t, "components:\n  fsmond:\n    publish: [events.filesystem.#]\n")
	_, err := p.Admit(transport.Peer{UID: 1000, PID: 5}, "/usr/bin/fsmond", "fsmond", nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no uids, gids, sids or executables") {
		t.Errorf("Admit(fsmond with no constraints) = %v; want a refusal naming the missing constraints", err)
	}
}

// TestAdmitSIDs: a Windows peer (one with a SID) is admitted by sids, any
// other by uids and gids, and an entry naming users only of the other kind
// refuses the peer.
func TestAdmitSIDs(t *testing.T) {
	const noID = ^uint32(0)
	exe := filepath.Join(os.TempDir(), "winmond") // absolute on every OS
	p := mustParse(t, `components:
  winmond:
    sids: [s-1-5-018]
    executables: ['`+exe+`']
  mixed:
    uids: [1000]
    sids: [S-1-5-21-1-2-3-1001]
`)
	system := transport.Peer{UID: noID, GID: noID, PID: 4, SID: "S-1-5-18"}
	winUser := transport.Peer{UID: noID, GID: noID, PID: 5, SID: "S-1-5-21-1-2-3-1001"}
	root := transport.Peer{UID: 0, GID: 0, PID: 6}
	user := transport.Peer{UID: 1000, GID: 1000, PID: 7}
	tests := []struct {
		peer   transport.Peer
		exe    string
		claim  string
		reason string // "": admitted
	}{
		{system, exe, "winmond", ""},
		{system, "", "winmond", "executable unknown"},
		{winUser, exe, "winmond", "sid S-1-5-21-1-2-3-1001 not in [S-1-5-18]"},
		{root, exe, "winmond", "the policy admits the component only by sids [S-1-5-18] (Windows users), and the OS reports no SID for this peer"},
		{transport.Peer{UID: noID, GID: noID}, exe, "winmond", "only by sids"},
		{user, "", "mixed", ""},
		{winUser, "", "mixed", ""},
		{root, "", "mixed", "uid 0 not in [1000]"},
		{system, "", "mixed", "sid S-1-5-18 not in [S-1-5-21-1-2-3-1001]"},
		{transport.Peer{UID: noID, GID: noID}, "", "mixed", "the OS reports no uid or gid for this peer"},
	}
	for _, tt := range tests {
		id, err := p.Admit(tt.peer, tt.exe, tt.claim, nil)
		switch {
		case tt.reason == "" && err != nil:
			t.Errorf("Admit(%+v, %q, %s) = %v; want admitted", tt.peer, tt.exe, tt.claim, err)
		case tt.reason == "" && (id.SID != tt.peer.SID || id.Component != tt.claim || !id.Registered):
			t.Errorf("Admit(%+v, %q, %s) = %+v; want component %s with sid %q", tt.peer, tt.exe, tt.claim, id, tt.claim, tt.peer.SID)
		case tt.reason != "" && (err == nil || !strings.Contains(err.Error(), tt.reason)):
			t.Errorf("Admit(%+v, %q, %s) = %v; want refused: %s", tt.peer, tt.exe, tt.claim, err, tt.reason)
		}
	}
}

func TestIdentityString(t *testing.T) {
	tests := []struct {
		id   Identity
		want string
	}{
		{Identity{UID: 1000, GID: 100, PID: 7}, "anonymous peer (uid 1000, gid 100, pid 7)"},
		{Identity{Component: "procmond", UID: ^uint32(0), GID: ^uint32(0), PID: 8, SID: "S-1-5-18", Registered: true},
			"component procmond (sid S-1-5-18, pid 8)"},
	}
	for _, tt := range tests {
		if got := tt.id.String(); got != tt.want {
			t.Errorf("%#v.String() = %q; want %q", tt.id, got, tt.want)
		}
	}
}

func TestAdmitAgentTokenConfig(t *testing.T) {
	token := []byte(strings.Repeat("0", 64))
	tests := []struct {
		name string
		p    *Policy
		err  string
	}{
		{"none configured", mustParse(t, ""), "no agent token is configured"},
		{"configured then cleared", mustParse(t, "").WithAgentToken(token).WithAgentToken(nil), "no agent token is configured"},
		{"agent uid checked too", Default(1000).WithAgentToken(token), "uid 5 not in [1000 0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.p.Admit(transport.Peer{UID: 5}, "", AgentComponent, token)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Admit(agent) = %v; want %q", err, tt.err)
			}
		})
	}
	p := Default(1000)
	if q := p.WithAgentToken(token); q == p || p.tokenSum != nil {
		t.Error("WithAgentToken changed its receiver")
	}
}

func TestInProcessIdentity(t *testing.T) {
	id := InProcessIdentity(transport.Peer{UID: 7, GID: 8, PID: 9})
	if !id.Agent || !id.Registered || id.Component != AgentComponent || id.UID != 7 || id.PID != 9 {
		t.Errorf("InProcessIdentity = %+v; want the agent", id)
	}
	if id := InProcessIdentity(transport.Peer{UID: ^uint32(0), GID: ^uint32(0), PID: 9, SID: "S-1-5-18"}); id.SID != "S-1-5-18" {
		t.Errorf("InProcessIdentity(Windows peer).SID = %q; want S-1-5-18", id.SID)
	}
	if err := Default(0).Check(id, Publish, "control.agent.policy"); err != nil {
		t.Errorf("in-process publish to a privileged topic = %v; want nil", err)
	}
}

// TestEnsureTokenFile checks Unix modes; token_windows_test.go checks
// Windows ACLs.
func TestEnsureTokenFile(t *testing.T) {
	if os.Getuid() < 0 {
		t.Skip("no Unix ownership on this OS")
	}
	t.Run("creates", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "run", "eventbus", "agent.token")
		tok, err := EnsureTokenFile(path)
		if err != nil {
			t.Fatalf("EnsureTokenFile: %v", err)
		}
		for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("mode of %s = %v, %v; want %v", p, fi.Mode().Perm(), err, want)
			}
		}
		checkNewToken(t, path, tok)
	})
	good := strings.Repeat("5", 64) + "\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		err   string
	}{
		{"0644 file", func(t *testing.T, path string) { write(t, path, good, 0o644) }, "group or other permission bits"},
		{"0640 file", func(t *testing.T, path string) { write(t, path, good, 0o640) }, "group or other permission bits"},
		{"symlink", func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "real")
			write(t, target, good, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "is a symlink"},
		{"directory", func(t *testing.T, path string) { os.Mkdir(path, 0o700) }, "not a regular file"},
		{"short token", func(t *testing.T, path string) { write(t, path, "secret\n", 0o600) }, "want at least 32"},
		{"open directory", func(t *testing.T, path string) { os.Chmod(filepath.Dir(path), 0o777) }, "lets group or others write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.token")
			tt.setup(t, path)
			tok, err := EnsureTokenFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("EnsureTokenFile = %q, %v; want an error naming %s and %q", tok, err, path, tt.err)
			}
		})
	}
	if _, err := EnsureTokenFile(""); err == nil {
		t.Error("EnsureTokenFile(\"\") = nil error")
	}
}

func write(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // beat the umask
		t.Fatal(err)
	}
}

func TestEnsureTokenFileConcurrent(t *testing.T) {
	if os.Getuid() < 0 && runtime.GOOS != "windows" {
		t.Skip("no Unix ownership or Windows ACLs on this OS")
	}
	path := filepath.Join(tempDir(t), "d", "agent.token")
	const n = 8
	toks := make(chan string, n)
	for range n {
		go func() {
			tok, err := EnsureTokenFile(path)
			if err != nil {
				t.Error(err)
			}
			toks <- string(tok)
		}()
	}
	first := <-toks
	for range n - 1 {
		if tok := <-toks; tok != first {
			t.Errorf("concurrent callers got %q and %q; want one token", first, tok)
		}
	}
}

// TestClassDecidesAlike: identities of one Class get the same decision for
// every action and topic, whatever else differs (the broker routes by
// Class), and Class.Identity stands for them.
func TestClassDecidesAlike(t *testing.T) {
	p := Default(0)
	groups := [][]Identity{
		{{}, {UID: 1000, PID: 7}, {SID: "S-1-5-21-1", PID: 8, Exe: "/x"}},
		{{Component: "procmond", Registered: true, UID: 0, PID: 1}, {Component: "procmond", Registered: true, UID: 5, PID: 2, Exe: "/bin/p"}},
		{{Component: AgentComponent, Agent: true, Registered: true, PID: 3}, {Component: AgentComponent, Agent: true, Registered: true, UID: 9, PID: 4}},
	}
	for _, g := range groups {
		c := g[0].Class()
		for _, id := range g {
			if id.Class() != c {
				t.Errorf("%v.Class() = %v; want %v", id, id.Class(), c)
			}
			for _, tp := range specTopics {
				for _, a := range []Action{Publish, Subscribe} {
					want := p.Check(id, a, tp) == nil
					if got := p.Check(c.Identity(), a, tp) == nil; got != want {
						t.Errorf("class %v: %v %s allowed = %v; %v is allowed %v", c, a, tp, got, id, want)
					}
				}
			}
		}
	}
	if groups[0][0].Class() == groups[1][0].Class() || groups[1][0].Class() == groups[2][0].Class() {
		t.Error("anonymous, procmond and the agent share a class")
	}
}
