package transport_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/transport/transporttest"
)

func TestConformance(t *testing.T) {
	f := transporttest.Factory{
		Addr: pipeAddr,
		Self: transport.Peer{
			UID: ^uint32(0),
			GID: ^uint32(0),
			PID: os.Getpid(),
			SID: selfSID(t),
		},
		CheckAccess: checkPipeDACL,
		// An empty protected DACL: nobody may open the pipe.
		Deny:    transport.WithSDDL("D:P"),
		Invalid: []transport.ListenOption{transport.WithSDDL("not SDDL")},
		Expect:  transport.ExpectServerSID(selfSID(t)),
		// A user that is no one's: S-1-5-21 domain 1-2-3, RID 1001.
		Untrusted: transport.ExpectServerSID("S-1-5-21-1-2-3-1001"),
	}
	if selfTrusted(t) {
		t.Log("this process runs as LocalSystem or an administrator, trusted as a broker whatever user is expected: no DialUntrusted")
		f.Untrusted = nil
	}
	f.Exe = executable(t)
	if got, err := transport.Self(); err != nil || got != f.Self {
		t.Errorf("Self() = %+v, %v; want %+v", got, err, f.Self)
	}
	if transport.UnderWine() {
		t.Log("running under Wine, which keeps a pipe's security descriptor but does not enforce it: no Access/deny")
		f.Deny = nil
	}
	transporttest.Run(t, f)
}

var pipeSeq atomic.Int64

// pipeAddr returns a pipe name unique to this process and call. Pipes
// vanish with their last handle, so there is nothing to clean up.
func pipeAddr(*testing.T) string {
	return fmt.Sprintf(`\\.\pipe\eventbus-test-%d-%d`, os.Getpid(), pipeSeq.Add(1))
}

func selfSID(t *testing.T) string {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	return user.User.Sid.String()
}

// selfTrusted reports whether this process's token is one Dial trusts
// whatever user it expects: LocalSystem's, or one holding Administrators
// enabled.
func selfTrusted(t *testing.T) bool {
	tok := windows.GetCurrentProcessToken()
	if selfSID(t) == "S-1-5-18" {
		return true
	}
	groups, err := tok.GetTokenGroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.AllGroups() {
		if g.Sid.String() == "S-1-5-32-544" && g.Attributes&windows.SE_GROUP_ENABLED != 0 &&
			g.Attributes&windows.SE_GROUP_USE_FOR_DENY_ONLY == 0 {
			return true
		}
	}
	return false
}

// checkPipeDACL reads the pipe's DACL through a client handle and checks
// that it holds exactly DefaultSDDL's entries.
func checkPipeDACL(t *testing.T, ln net.Listener, addr string) {
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, _ := ln.Accept()
		accepted <- conn
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := transport.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial(%q) = %v", addr, err)
	}
	defer client.Close()
	if server := <-accepted; server != nil {
		defer server.Close()
	}
	h := windows.Handle(client.(interface{ Fd() uintptr }).Fd())
	sd, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetSecurityInfo(pipe) = %v", err)
	}
	got := sd.String()
	t.Logf("pipe security descriptor: %s", got)
	want, err := windows.SecurityDescriptorFromString(transport.DefaultSDDL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "D:P") || aceCount(got) != aceCount(want.String()) {
		t.Errorf("pipe DACL = %s; want one as protected and with as many entries as %s", got, transport.DefaultSDDL)
	}
}

func aceCount(sddl string) int { return strings.Count(sddl, "(A;") }
