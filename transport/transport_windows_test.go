package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

func TestDefaultPathWindows(t *testing.T) {
	tests := []struct{ socket, want string }{
		{`\\.\pipe\custom`, `\\.\pipe\custom`},
		{"", `\\.\pipe\eventbus`},
	}
	for _, tt := range tests {
		t.Setenv(envSocket, tt.socket)
		if got := DefaultPath(); got != tt.want {
			t.Errorf("DefaultPath() with %s=%q = %q; want %q", envSocket, tt.socket, got, tt.want)
		}
	}
}

func TestCheckPipePath(t *testing.T) {
	tests := []struct {
		path, wantErr string // wantErr "": valid
	}{
		{`\\.\pipe\eventbus`, ""},
		{`\\.\PIPE\EventBus`, ""},
		{`\\.\pipe\` + strings.Repeat("x", maxPipePath-len(pipePrefix)), ""},
		{`\\.\pipe\` + strings.Repeat("x", maxPipePath-len(pipePrefix)+1), "at most 256"},
		{"", "empty pipe path"},
		{`\\.\pipe\a` + "\x00", "NUL"},
		{`\\.\pipe\`, `want \\.\pipe\NAME`},
		{`\\.\pipe\a\b`, `want \\.\pipe\NAME`},
		{`C:\eventbus.sock`, `want \\.\pipe\NAME`},
		{`eventbus`, `want \\.\pipe\NAME`},
		{`\\server\pipe\eventbus`, `want \\.\pipe\NAME`},
	}
	for _, tt := range tests {
		err := checkPipePath("listen", tt.path)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("checkPipePath(%q) = %v; want nil", tt.path, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("checkPipePath(%q) = %v; want an error mentioning %q", tt.path, err, tt.wantErr)
		}
	}
}

func TestListenDialBadPath(t *testing.T) {
	for _, path := range []string{"", "/tmp/eventbus.sock", `\\.\pipe\`} {
		if ln, err := Listen(path); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded; want an error", path)
		}
		if conn, err := Dial(context.Background(), path); err == nil {
			conn.Close()
			t.Errorf("Dial(%q) succeeded; want an error", path)
		}
	}
}

var pipeSeq atomic.Int64

// acceptDialed connects dial to a new listener and returns both ends.
func acceptDialed(t *testing.T, dial func(ctx context.Context, path string) (net.Conn, error)) (client, server net.Conn) {
	t.Helper()
	path := fmt.Sprintf(`\\.\pipe\eventbus-internal-test-%d-%d`, os.Getpid(), pipeSeq.Add(1))
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, _ := ln.Accept()
		accepted <- conn
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err = dial(ctx, path)
	if err != nil {
		ln.Close()
		<-accepted
		t.Fatalf("dial = %v", err)
	}
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	if server == nil {
		t.Fatal("Accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func selfSID(t *testing.T) string {
	t.Helper()
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	return user.User.Sid.String()
}

// TestClientSID checks both ways PeerOf finds a client's user: the token a
// client that used Dial presents, and the process token of one that dialed
// at the anonymous level.
func TestClientSID(t *testing.T) {
	t.Logf("under Wine: %t", underWine())
	want := selfSID(t)

	_, server := acceptDialed(t, func(ctx context.Context, path string) (net.Conn, error) { return Dial(ctx, path) })
	h := windows.Handle(server.(pipeConn).Fd())
	if got, err := clientSID(h); err != nil || got != want {
		t.Errorf("clientSID(client that used Dial) = %q, %v; want %q", got, err, want)
	}

	anonymous := func(ctx context.Context, path string) (net.Conn, error) { return winio.DialPipeContext(ctx, path) }
	_, server = acceptDialed(t, anonymous)
	h = windows.Handle(server.(pipeConn).Fd())
	if got, err := clientSID(h); err == nil {
		t.Logf("clientSID(anonymous client) = %q, nil: this system does not enforce the anonymous level", got)
	} else if !errors.Is(err, windows.ERROR_CANT_OPEN_ANONYMOUS) {
		t.Logf("clientSID(anonymous client) = %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got, err := PeerOf(server)
	if err != nil || !strings.EqualFold(got.Exe, exe) {
		t.Errorf("PeerOf(anonymous client) = %+v, %v; want Exe %s", got, err, exe)
	}
	got.Exe = ""
	if wantPeer := (Peer{UID: noID, GID: noID, PID: os.Getpid(), SID: want}); got != wantPeer {
		t.Errorf("PeerOf(anonymous client) = %+v; want %+v", got, wantPeer)
	}
}

// TestBrokerOf identifies the server of a pipe this process serves: its
// own pid, user and Administrators membership, from its process token.
func TestBrokerOf(t *testing.T) {
	client, _ := acceptDialed(t, func(ctx context.Context, path string) (net.Conn, error) { return Dial(ctx, path) })
	got, err := brokerOf(windows.Handle(client.(pipeConn).Fd()))
	if err != nil {
		t.Fatal(err)
	}
	sid, admin, err := processUser(uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	want := server{pid: os.Getpid(), sid: selfSID(t), admin: admin}
	if got != want || sid != want.sid {
		t.Errorf("brokerOf(own pipe) = %+v; want %+v", got, want)
	}
	t.Logf("this process holds Administrators enabled: %t", admin)
}

// TestDialBadExpectedSID: an ExpectServerSID that Windows cannot parse
// fails Dial with an error naming it; one naming this process's user
// passes.
func TestDialBadExpectedSID(t *testing.T) {
	path := fmt.Sprintf(`\\.\pipe\eventbus-internal-test-%d-%d`, os.Getpid(), pipeSeq.Add(1))
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := Dial(context.Background(), path, ExpectServerSID("S-1-nonsense"))
	if err == nil {
		conn.Close()
		t.Fatal("Dial with an invalid expected SID succeeded")
	}
	if want := `transport: dial ` + path + `: expected broker SID "S-1-nonsense" is not a SID`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Dial = %v; want an error starting %q", err, want)
	}
	// A valid one naming this process's user lets Dial through.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err = Dial(ctx, path, ExpectServerSID(selfSID(t)))
	if err != nil {
		ln.Close()
		<-accepted
		t.Fatalf("Dial expecting this process's SID = %v", err)
	}
	conn.Close()
	if c := <-accepted; c != nil {
		c.Close()
	}
}
