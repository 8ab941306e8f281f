package transport

// Dial's check of the broker (docs/SECURITY.md §1): whoever can take over
// the endpoint's path must not receive what a client sends, so Dial
// verifies the listener's kernel-reported user before returning.

import "strconv"

// Well-known Windows SIDs that Dial trusts as it trusts root on Unix.
const (
	sidLocalSystem    = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
)

type dialConfig struct {
	uid    uint32 // with hasUID: the broker's expected uid
	hasUID bool
	sid    string // the broker's expected SID; "": this process's user
}

// DialOption configures [Dial].
type DialOption func(*dialConfig)

// ExpectServerUID makes [Dial] accept a broker that runs as uid (or as
// root, who could act as any uid anyway) instead of one that runs as the
// caller's own effective uid. The last such option counts. Windows pipes
// have no uid: there the option is ignored and the SID check applies (see
// [ExpectServerSID]).
func ExpectServerUID(uid uint32) DialOption {
	return func(c *dialConfig) { c.uid, c.hasUID = uid, true }
}

// ExpectServerSID makes [Dial] on Windows accept a broker whose user is
// sid ("S-1-5-21-..."), or LocalSystem, or a member of Administrators,
// instead of one running as the caller's own user. An empty sid means the
// default; one Windows cannot parse makes Dial fail before it connects.
// Unix sockets ignore it (see [ExpectServerUID]).
func ExpectServerSID(sid string) DialOption {
	return func(c *dialConfig) { c.sid = sid }
}

// server is a broker's identity as the client end of a connection sees it.
type server struct {
	uid     uint32
	pid     int // 0: unknown
	sid     string
	admin   bool // Windows: sid is Administrators or the token holds it enabled
	byOwner bool // Windows: sid is the pipe's owner, the process token being unreadable
}

// checkUID is the Unix check: the broker must run as want, or root. own
// says want is the caller's euid rather than an ExpectServerUID.
func checkUID(path string, s server, want uint32, own bool) error {
	if s.uid == want || s.uid == 0 {
		return nil
	}
	var wanted string
	switch {
	case want == 0:
		wanted = "root (uid 0)"
	case own:
		wanted = "uid " + strconv.FormatUint(uint64(want), 10) + " (this client's own) or root"
	default:
		wanted = "uid " + strconv.FormatUint(uint64(want), 10) + " or root"
	}
	return newError(ErrUntrustedBroker, nil, "untrusted broker at %s: it runs as uid %d (%s); want %s",
		path, s.uid, pidText(s.pid), wanted)
}

// checkSID is the Windows check: the broker's user must be want,
// LocalSystem, or an administrator. own says want is the caller's user
// rather than an ExpectServerSID.
func checkSID(path string, s server, want string, own bool) error {
	if s.sid == want || s.sid == sidLocalSystem || s.admin {
		return nil
	}
	who := "it runs as " + s.sid + " (" + pidText(s.pid) + ")"
	if s.byOwner {
		who = "its pipe is owned by " + s.sid + " (" + pidText(s.pid) + "; its process token is unreadable)"
	}
	whose := ""
	if own {
		whose = " (this client's own user)"
	}
	return newError(ErrUntrustedBroker, nil,
		"untrusted broker at %s: %s; want %s%s, LocalSystem (%s) or a member of Administrators (%s)",
		path, who, want, whose, sidLocalSystem, sidAdministrators)
}

// unverified is Dial's error when the broker's identity cannot be read: it
// fails closed.
func unverified(path string, err error) error {
	return newError(ErrUntrustedBroker, err, "cannot verify the broker at %s: %v", path, err)
}

func pidText(pid int) string {
	if pid <= 0 {
		return "pid unknown"
	}
	return "pid " + strconv.Itoa(pid)
}

// brokerRunning is Listen's error for an endpoint another broker holds,
// naming that broker's pid when it is known.
func brokerRunning(path string, pid int, cause error) error {
	if pid > 0 {
		return newError(ErrBrokerRunning, cause, "a broker (pid %d) is already listening at %s", pid, path)
	}
	return newError(ErrBrokerRunning, cause, "a broker is already listening at %s", path)
}
