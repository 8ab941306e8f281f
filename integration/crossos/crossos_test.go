package crossos

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/transport"
)

const marker = "control.health.heartbeat" // public: ends each subscriber

// userEntry is the policy line that admits this process's user to a
// component: its SID on Windows, its uid elsewhere. Helpers run as the
// same user, so the entry admits them.
func userEntry(t *testing.T) string { return "    " + testutil.UserEntry(t) + "\n" }

// otherUserEntry admits a user other than this process's.
func otherUserEntry(t *testing.T) string {
	self, err := transport.Self()
	if err != nil {
		t.Fatal(err)
	}
	if self.SID != "" {
		return "    sids: [S-1-5-21-1-2-3-4242]\n"
	}
	return fmt.Sprintf("    uids: [%d]\n", self.UID+1)
}

// startBroker starts a broker helper on a fresh endpoint with policy (YAML;
// "" for the built-in policy) and waits until it accepts clients. When the
// test ends it is stopped and must say it shut down cleanly.
func startBroker(t *testing.T, policy string) (b *proctest.Proc, path string) {
	t.Helper()
	path = testutil.SocketPath(t)
	b = start(t, "broker", "broker", []string{envPolicy + "=" + policy}, "-socket", path)
	b.WaitLine(t, "ready", waitTimeout)
	t.Cleanup(func() {
		b.Stop(t)
		if !slices.Contains(b.Stdout.Lines(), "stopped") || b.Err() != nil {
			t.Errorf("broker did not shut down cleanly: %v; stdout %q; stderr:\n%s", b.Err(), b.Stdout.Lines(), b.Stderr.String())
		}
	})
	return b, path
}

// TestPubSubAcrossProcesses runs a broker, three subscribers and a
// publisher as five processes over the OS's endpoint, with an access
// policy that admits both components by this user's identity (its SID on
// Windows), and checks that each subscriber gets exactly the topics its
// pattern matches (exact, '+' and '#'), every message once, intact and in
// order per topic, stamped with the publisher's verified pid and
// component.
func TestPubSubAcrossProcesses(t *testing.T) {
	user := userEntry(t)
	broker, path := startBroker(t, "default_access: restricted\n"+
		"topics:\n  - {pattern: control.health.#, access: public}\n"+
		"components:\n"+
		"  procmond:\n"+user+"    publish: [events.#, other.#]\n"+
		"  watcher:\n"+user+"    subscribe: [events.#]\n")
	t.Logf("%s on %s: policy admits %s", runtime.GOOS, path, strings.TrimSpace(user))

	topics := []string{
		"events.process.lifecycle",
		"events.network.lifecycle",
		"events.process.metadata",
		"events.process.lifecycle.extra",
		"other.topic",
	}
	subs := []struct {
		name, pattern string
		want          []string // topics delivered
	}{
		{"exact", "events.process.lifecycle", topics[:1]},
		{"plus", "events.+.lifecycle", topics[:2]},
		{"hash", "events.#", topics[:4]},
	}
	procs := make([]*proctest.Proc, len(subs))
	for i, s := range subs {
		procs[i] = start(t, "sub "+s.name, "sub", nil,
			"-socket", path, "-component", "watcher", "-patterns", s.pattern+","+marker, "-until", marker)
	}
	for _, p := range procs {
		p.WaitLine(t, "subscribed", waitTimeout)
	}
	checkStats(t, broker, procs)

	const count = 100
	pub := start(t, "pub", "pub", nil, "-socket", path, "-component", "procmond",
		"-topics", strings.Join(topics, ","), "-count", strconv.Itoa(count), "-marker", marker)
	pidLine := pub.WaitLine(t, "pid ", waitTimeout)
	pub.WaitLine(t, "done ", waitTimeout)
	pub.WaitOK(t, waitTimeout)
	pubPID := pub.Pid()
	if pidLine != "pid "+strconv.Itoa(pubPID) {
		t.Errorf("publisher says %q; its process id is %d", pidLine, pubPID)
	}

	for i, s := range subs {
		p := procs[i]
		p.WaitLine(t, "exit ", waitTimeout)
		p.WaitOK(t, waitTimeout)
		checkDelivery(t, s.name, p.Stdout.Lines(), s.want, count, pubPID)
	}
}

// checkStats checks that the broker's statistics show each subscriber
// process with the identity the OS gave it (its pid, on Windows its user
// SID, and its executable where the OS reveals it: Linux, macOS, Windows)
// and the component the policy admitted.
func checkStats(t *testing.T, broker *proctest.Proc, subs []*proctest.Proc) {
	t.Helper()
	self, err := transport.Self()
	if err != nil {
		t.Fatal(err)
	}
	seen := len(broker.Stdout.Lines())
	fmt.Fprintln(broker.Stdin, "stats")
	broker.WaitLine(t, "stats end", waitTimeout)
	conns := make(map[string]string) // pid -> "uid sid component"
	exes := make(map[string]string)  // pid -> executable
	for _, line := range broker.Stdout.Lines()[seen:] {
		f := strings.SplitN(line, " ", 6)
		if len(f) != 6 || f[0] != "conn" {
			continue
		}
		exe, err := strconv.Unquote(f[5])
		if err != nil {
			t.Errorf("broker stats line %q: exe: %v", line, err)
		}
		conns[f[1]] = strings.Join(f[2:5], " ")
		exes[f[1]] = exe
	}
	t.Logf("broker stats, pid: uid sid component: %v; exe: %v", conns, exes)
	want := fmt.Sprintf("%d %s watcher", self.UID, orDash(self.SID))
	wantExe := helperExe(t)
	for _, p := range subs {
		pid := strconv.Itoa(p.Pid())
		if got := conns[pid]; got != want {
			t.Errorf("stats for %s (pid %s): uid sid component = %q; want %q (all: %v)", p.Name, pid, got, want, conns)
		}
		switch got := exes[pid]; {
		case !revealsExe():
			if got != "" {
				t.Errorf("stats for %s (pid %s): exe %q; want none on %s", p.Name, pid, got, runtime.GOOS)
			}
		case !sameFile(t, got, wantExe):
			t.Errorf("stats for %s (pid %s): exe %q; want %s", p.Name, pid, got, wantExe)
		}
	}
}

// revealsExe reports whether the broker reads a peer's executable here:
// on FreeBSD from the pid FreeBSD 13 and later report (not yet run there);
// macOS offers no path the peer cannot forge.
func revealsExe() bool {
	switch runtime.GOOS {
	case "linux", "freebsd", "windows":
		return true
	}
	return false
}

// helperExe is the executable every helper process runs: this test binary.
func helperExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// sameFile reports whether paths a and b name the same file after
// resolving symlinks, ignoring case on Windows.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	if a == "" || b == "" {
		return false
	}
	ra, err := filepath.EvalSymlinks(a)
	if err != nil {
		t.Errorf("%s: %v", a, err)
		return false
	}
	rb, err := filepath.EvalSymlinks(b)
	if err != nil {
		t.Errorf("%s: %v", b, err)
		return false
	}
	if runtime.GOOS == "windows" {
		return strings.EqualFold(ra, rb)
	}
	return ra == rb
}

// checkDelivery checks a subscriber's msg lines: count messages on each of
// want, in order, then the marker; nothing else.
func checkDelivery(t *testing.T, sub string, lines, want []string, count, pubPID int) {
	t.Helper()
	next := make(map[string]int) // topic -> next seq expected
	received, markers := 0, 0
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "msg" {
			continue
		}
		if len(f) != 6 {
			t.Errorf("%s: malformed line %q", sub, line)
			continue
		}
		topicName, seq, pid, comp, verdict := f[1], f[2], f[3], f[4], f[5]
		if pid != strconv.Itoa(pubPID) || comp != "procmond" || verdict != "ok" {
			t.Errorf("%s: %q: want publisher pid %d, component procmond, payload ok", sub, line, pubPID)
		}
		if topicName == marker {
			markers++
			continue
		}
		received++
		if !slices.Contains(want, topicName) {
			t.Errorf("%s got a message on %s; its pattern matches only %v", sub, topicName, want)
			continue
		}
		if seq != strconv.Itoa(next[topicName]) {
			t.Errorf("%s: %s message #%s arrived where #%d was due (lost, repeated or out of order)", sub, topicName, seq, next[topicName])
		}
		next[topicName]++
	}
	for _, topicName := range want {
		if next[topicName] != count {
			t.Errorf("%s: %d messages on %s; want %d", sub, next[topicName], topicName, count)
		}
	}
	if markers != 1 || received != count*len(want) {
		t.Errorf("%s: %d messages and %d markers; want %d and 1", sub, received, markers, count*len(want))
	}
	t.Logf("%s: %d messages on %d topics, in order, from pid %d", sub, received, len(want), pubPID)
}

// TestAdmission checks who the broker admits across processes: a
// component by this user's identity (SID on Windows) under a policy's
// entry and under the built-in policy; not a component whose entry names
// another user; by executable path where the OS reveals it (and none
// where it does not: fails closed), not one whose entry names another
// executable; and an anonymous peer only to public topics.
func TestAdmission(t *testing.T) {
	const restricted, public = "events.process.lifecycle", "events.process.anomaly"
	type peer struct {
		component string
		want      []string // line prefixes the peer must print
	}
	tests := []struct {
		name, policy string
		peers        []peer
	}{
		{"policy", "components:\n" +
			"  procmond:\n" + userEntry(t) + "    publish: [events.process.#]\n" +
			"  intruder:\n" + otherUserEntry(t) + "    publish: [events.process.#]\n",
			[]peer{
				{"procmond", []string{"dial ok", "pub ok " + restricted, "pub ok " + public}},
				{"intruder", []string{"dial err forbidden=true"}},
				{"", []string{"dial ok", "pub err " + restricted + " forbidden=true", "pub err " + public + " forbidden=true"}},
			}},
		{"executables", "components:\n" +
			"  procmond:\n" + userEntry(t) + "    executables: [" + strconv.Quote(helperExe(t)) + "]\n    publish: [events.process.#]\n" +
			"  impostor:\n" + userEntry(t) + "    executables: [" + strconv.Quote(otherExe(t)) + "]\n    publish: [events.process.#]\n",
			[]peer{
				{"procmond", []string{ifExe("dial ok", "dial err forbidden=true"), ifExe("pub ok "+restricted, "done")}},
				{"impostor", []string{"dial err forbidden=true"}},
			}},
		{"built-in", "", []peer{
			{"procmond", []string{"dial ok", "pub ok " + restricted, "pub ok " + public}},
			{"", []string{"dial ok", "pub err " + restricted + " forbidden=true", "pub ok " + public}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path := startBroker(t, tt.policy)
			for _, pe := range tt.peers {
				p := start(t, "peer "+pe.component, "peer", nil, "-socket", path, "-component", pe.component,
					"-publish", restricted+","+public)
				p.WaitLine(t, "done", waitTimeout)
				p.WaitOK(t, waitTimeout)
				for _, w := range pe.want {
					if !slices.ContainsFunc(p.Stdout.Lines(), func(l string) bool { return strings.HasPrefix(l, w) }) {
						t.Errorf("peer claiming %q printed %q; want a line starting %q", pe.component, p.Stdout.Lines(), w)
					}
				}
			}
		})
	}
}

// otherExe is an absolute path, on this OS, of an executable that is not
// the helpers'.
func otherExe(t *testing.T) string {
	exe := helperExe(t)
	return filepath.Join(filepath.Dir(exe), "not-"+filepath.Base(exe))
}

// ifExe is yes where the broker reads a peer's executable, else no.
func ifExe(yes, no string) string {
	if revealsExe() {
		return yes
	}
	return no
}
