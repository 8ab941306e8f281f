package transport

import (
	"errors"
	"testing"
)

func TestCheckUID(t *testing.T) {
	const path = "/run/eventbus/eventbus.sock"
	tests := []struct {
		name string
		s    server
		want uint32
		own  bool
		err  string // "": trusted
	}{
		{"own uid", server{uid: 1000, pid: 7}, 1000, true, ""},
		{"root broker", server{uid: 0, pid: 7}, 1000, true, ""},
		{"expected uid", server{uid: 990, pid: 7}, 990, false, ""},
		{"other uid", server{uid: 65534, pid: 7}, 1000, true,
			"transport: untrusted broker at " + path + ": it runs as uid 65534 (pid 7); want uid 1000 (this client's own) or root"},
		{"other than expected", server{uid: 1000, pid: 7}, 990, false,
			"transport: untrusted broker at " + path + ": it runs as uid 1000 (pid 7); want uid 990 or root"},
		{"root client", server{uid: 1000, pid: 7}, 0, true,
			"transport: untrusted broker at " + path + ": it runs as uid 1000 (pid 7); want root (uid 0)"},
		{"pid unknown", server{uid: 1000}, 0, true,
			"transport: untrusted broker at " + path + ": it runs as uid 1000 (pid unknown); want root (uid 0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTrust(t, checkUID(path, tt.s, tt.want, tt.own), tt.err)
		})
	}
}

func TestCheckSID(t *testing.T) {
	const (
		path  = `\\.\pipe\eventbus`
		me    = "S-1-5-21-1-2-3-1001"
		other = "S-1-5-21-1-2-3-1002"
		tail  = ", LocalSystem (S-1-5-18) or a member of Administrators (S-1-5-32-544)"
	)
	tests := []struct {
		name string
		s    server
		want string
		own  bool
		err  string // "": trusted
	}{
		{"own user", server{sid: me, pid: 7}, me, true, ""},
		{"LocalSystem", server{sid: sidLocalSystem, pid: 7}, me, true, ""},
		{"administrator", server{sid: other, pid: 7, admin: true}, me, true, ""},
		{"pipe owned by Administrators", server{sid: sidAdministrators, pid: 7, admin: true, byOwner: true}, me, true, ""},
		{"expected user", server{sid: other, pid: 7}, other, false, ""},
		{"other user", server{sid: other, pid: 7}, me, true,
			`transport: untrusted broker at ` + path + `: it runs as ` + other + ` (pid 7); want ` + me + ` (this client's own user)` + tail},
		{"other than expected", server{sid: me, pid: 7}, other, false,
			`transport: untrusted broker at ` + path + `: it runs as ` + me + ` (pid 7); want ` + other + tail},
		{"pipe owned by another user", server{sid: other, pid: 7, byOwner: true}, me, true,
			`transport: untrusted broker at ` + path + `: its pipe is owned by ` + other + ` (pid 7; its process token is unreadable); want ` + me + ` (this client's own user)` + tail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTrust(t, checkSID(path, tt.s, tt.want, tt.own), tt.err)
		})
	}
}

func checkTrust(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("check = %v; want the broker trusted", err)
	case want != "" && (err == nil || !errors.Is(err, ErrUntrustedBroker) || err.Error() != want):
		t.Errorf("check = %v; want %q matching ErrUntrustedBroker", err, want)
	}
}

func TestBrokerRunning(t *testing.T) {
	for pid, want := range map[int]string{
		812: "transport: a broker (pid 812) is already listening at /s",
		0:   "transport: a broker is already listening at /s",
	} {
		if err := brokerRunning("/s", pid, nil); !errors.Is(err, ErrBrokerRunning) || err.Error() != want {
			t.Errorf("brokerRunning(pid %d) = %v; want %q matching ErrBrokerRunning", pid, err, want)
		}
	}
}
