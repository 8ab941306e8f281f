package transport

// Who serves a pipe, from the client's end: Dial's check of the broker,
// and the holder a second Listen names.

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// holderWait bounds how long a second Listen waits for a free instance of
// a live pipe to learn its server's pid. A serving broker always has one
// pending; one that does not is merely not named.
const holderWait = time.Second

// resolveDial puts ExpectServerSID's SID in the form Windows prints, or
// fails before Dial connects.
func resolveDial(path string, cfg *dialConfig) error {
	if cfg.sid == "" {
		return nil
	}
	sid, err := windows.StringToSid(cfg.sid)
	if err != nil {
		return fmt.Errorf("transport: dial %s: expected broker SID %q is not a SID (want S-1-5-...): %w", path, cfg.sid, err)
	}
	cfg.sid = sid.String()
	return nil
}

// verifyServer checks the user of the process serving the pipe.
func verifyServer(conn net.Conn, path string, cfg dialConfig) error {
	pc, ok := conn.(pipeConn)
	if !ok {
		return unverified(path, fmt.Errorf("not a named pipe connection: %T", conn))
	}
	s, err := brokerOf(windows.Handle(pc.Fd()))
	if err != nil {
		return unverified(path, err)
	}
	want, own := cfg.sid, false
	if want == "" {
		me, err := self()
		if err != nil {
			return unverified(path, err)
		}
		want, own = me.SID, true
	}
	return checkSID(path, s, want, own)
}

// brokerOf identifies the server of the client end h: its pid, and the
// user and Administrators membership of its process token. A client may
// not open the token of a broker running as LocalSystem or an
// administrator; the pipe's owner then stands in, since its creator can
// make that only itself or a group it holds as owner (Administrators,
// when elevated), unless it may restore files (administrators only).
func brokerOf(h windows.Handle) (server, error) {
	pid, err := serverPID(h)
	if err != nil {
		return server{}, err
	}
	s := server{pid: int(pid)}
	sid, admin, tokErr := processUser(pid)
	if tokErr == nil {
		s.sid, s.admin = sid, admin
		return s, nil
	}
	sd, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return server{}, fmt.Errorf("%w; GetSecurityInfo(pipe owner): %w", tokErr, err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return server{}, fmt.Errorf("%w; the pipe has no owner (%v)", tokErr, err)
	}
	s.sid, s.byOwner = owner.String(), true
	s.admin = s.sid == sidAdministrators
	return s, nil
}

func serverPID(h windows.Handle) (uint32, error) {
	var pid uint32
	if err := windows.GetNamedPipeServerProcessId(h, &pid); err != nil {
		return 0, fmt.Errorf("GetNamedPipeServerProcessId: %w", err)
	}
	return pid, nil
}

// processUser returns the user of process pid's primary token and whether
// the token holds Administrators enabled (an administrator's unelevated
// token holds it for deny only, which does not count).
func processUser(pid uint32) (sid string, admin bool, err error) {
	tok, err := processToken(pid)
	if err != nil {
		return "", false, err
	}
	defer tok.Close()
	if sid, err = tokenSID(tok); err != nil {
		return "", false, err
	}
	groups, err := tok.GetTokenGroups()
	if err != nil {
		return "", false, fmt.Errorf("GetTokenInformation(TokenGroups): %w", err)
	}
	for _, g := range groups.AllGroups() {
		enabled := g.Attributes&windows.SE_GROUP_ENABLED != 0 && g.Attributes&windows.SE_GROUP_USE_FOR_DENY_ONLY == 0
		if enabled && g.Sid.String() == sidAdministrators {
			admin = true
		}
	}
	return sid, admin, nil
}

// pipeHolder returns the pid of the process serving path, 0 if it cannot
// be learnt: Windows tells a pipe's server only to a client, so it opens
// the pipe (waiting up to holderWait for a free instance) and asks.
func pipeHolder(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), holderWait)
	defer cancel()
	conn, err := winio.DialPipeAccessImpLevel(ctx, path, windows.GENERIC_READ, winio.PipeImpLevelIdentification)
	if err != nil {
		return 0
	}
	defer conn.Close()
	pc, ok := conn.(pipeConn)
	if !ok {
		return 0
	}
	pid, err := serverPID(windows.Handle(pc.Fd()))
	if err != nil {
		return 0
	}
	return int(pid)
}
