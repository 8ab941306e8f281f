package transport

import (
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/windows"
)

// pipeConn is what go-winio's pipe connections offer beyond net.Conn.
type pipeConn interface {
	net.Conn
	Fd() uintptr
	IsClosed() bool
}

var procImpersonateNamedPipeClient = windows.NewLazySystemDLL("advapi32.dll").NewProc("ImpersonateNamedPipeClient")

// peerOf identifies the process at the other end of a pipe: on the server
// end (a conn Accept returned) the client, on the client end (a conn Dial
// returned) the server.
func peerOf(conn net.Conn) (Peer, error) {
	pc, ok := conn.(pipeConn)
	if !ok {
		return Peer{}, newError(ErrUnsupported, nil,
			"peer credentials need a named pipe connection from Listen or Dial, not %T", conn)
	}
	if pc.IsClosed() {
		return Peer{}, fmt.Errorf("transport: peer credentials: %w", net.ErrClosed)
	}
	h := windows.Handle(pc.Fd())
	var flags uint32
	if err := windows.GetNamedPipeInfo(h, &flags, nil, nil, nil); err != nil {
		return Peer{}, fmt.Errorf("transport: peer credentials: GetNamedPipeInfo: %w", err)
	}
	var peer Peer
	var err error
	if flags&windows.PIPE_SERVER_END != 0 {
		peer, err = clientPeer(h)
	} else {
		peer, err = serverPeer(h)
	}
	if err != nil {
		return Peer{}, fmt.Errorf("transport: peer credentials: %w", err)
	}
	return peer, nil
}

// clientPeer identifies the client of the server end h.
func clientPeer(h windows.Handle) (Peer, error) {
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(h, &pid); err != nil {
		return Peer{}, fmt.Errorf("GetNamedPipeClientProcessId: %w", err)
	}
	sid, err := clientSID(h)
	if err != nil {
		// The client dialed at the anonymous level (not through Dial), or
		// impersonation is unavailable: fall back to its process's token.
		sid, err = processSID(pid)
	}
	if err != nil {
		return Peer{}, err
	}
	return Peer{UID: noID, GID: noID, PID: int(pid), SID: sid}, nil
}

// serverPeer identifies the server of the client end h.
func serverPeer(h windows.Handle) (Peer, error) {
	pid, err := serverPID(h)
	if err != nil {
		return Peer{}, err
	}
	sid, err := processSID(pid)
	if err != nil {
		return Peer{}, err
	}
	return Peer{UID: noID, GID: noID, PID: int(pid), SID: sid}, nil
}

// clientSID returns the user of the token the pipe's client presented when
// it connected: the kernel's record, bound to this connection (a pid can be
// reused once its process exits). Impersonation changes the calling OS
// thread, so it runs on a goroutine of its own, locked to its thread; if
// RevertToSelf ever failed, the goroutine would end still locked and the
// runtime would discard the thread rather than reuse it impersonating.
func clientSID(h windows.Handle) (sid string, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if r, _, callErr := procImpersonateNamedPipeClient.Call(uintptr(h)); r == 0 {
			runtime.UnlockOSThread()
			err = fmt.Errorf("ImpersonateNamedPipeClient: %w", callErr)
			return
		}
		sid, err = threadTokenSID()
		if windows.RevertToSelf() == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
	return sid, err
}

// threadTokenSID returns the user of the current thread's impersonation
// token. The token is opened with the process's own rights (openAsSelf):
// an identification-level token cannot open objects itself.
func threadTokenSID() (string, error) {
	var tok windows.Token
	if err := windows.OpenThreadToken(windows.CurrentThread(), windows.TOKEN_QUERY, true, &tok); err != nil {
		return "", fmt.Errorf("OpenThreadToken: %w", err)
	}
	defer tok.Close()
	return tokenSID(tok)
}

// processSID returns the user of process pid's primary token.
func processSID(pid uint32) (string, error) {
	tok, err := processToken(pid)
	if err != nil {
		return "", err
	}
	defer tok.Close()
	return tokenSID(tok)
}

// processToken opens process pid's primary token for queries.
func processToken(pid uint32) (windows.Token, error) {
	p, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return 0, fmt.Errorf("OpenProcess(%d): %w", pid, err)
	}
	defer windows.CloseHandle(p)
	var tok windows.Token
	if err := windows.OpenProcessToken(p, windows.TOKEN_QUERY, &tok); err != nil {
		return 0, fmt.Errorf("OpenProcessToken(%d): %w", pid, err)
	}
	return tok, nil
}

func tokenSID(tok windows.Token) (string, error) {
	user, err := tok.GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("GetTokenInformation(TokenUser): %w", err)
	}
	return user.User.Sid.String(), nil
}
