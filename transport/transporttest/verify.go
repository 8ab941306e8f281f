package transporttest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus/transport"
)

// testDialExpected dials with an option naming this process's own user.
func testDialExpected(t *testing.T, f Factory) {
	if f.Expect == nil {
		t.Skip("no option naming this process's user for this transport")
	}
	addr := f.Addr(t)
	ln := listen(t, addr)
	client, server := connect(t, ln, addr, f.Expect)
	roundTrip(t, client, server, []byte("trusted"))
}

// testDialUntrusted dials this process's own listener expecting another
// user: Dial must refuse it, naming the path and the listener's pid, and
// the listener must receive nothing.
func testDialUntrusted(t *testing.T, f Factory) {
	if f.Untrusted == nil {
		t.Skip("this process is trusted whatever user is expected (root, an administrator)")
	}
	addr := f.Addr(t)
	ln := listen(t, addr)
	// What the server end reads before its client closes; -1 when it
	// accepted nothing (a pipe whose client left before Accept took it).
	read := make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			read <- -1
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(timeout))
		n, _ := io.Copy(io.Discard, conn)
		read <- n
	}()
	conn, err := dial(t, addr, f.Untrusted)
	if err == nil {
		conn.Close()
		t.Error("Dial expecting another user succeeded; want ErrUntrustedBroker")
	}
	pid := fmt.Sprintf("(pid %d)", os.Getpid())
	if !errors.Is(err, transport.ErrUntrustedBroker) || err == nil ||
		!strings.HasPrefix(err.Error(), "transport: untrusted broker at "+addr+": ") || !strings.Contains(err.Error(), pid) {
		t.Errorf("Dial = %v; want ErrUntrustedBroker naming %s and %s", err, addr, pid)
	}
	// The client end is closed, so a connection Accept took ends in EOF;
	// closing the listener ends an Accept still waiting (a pipe's client
	// may leave before Accept takes it).
	ln.Close()
	select {
	case n := <-read:
		if n > 0 {
			t.Errorf("the listener read %d bytes from a client that refused it; want 0", n)
		}
	case <-time.After(timeout):
		t.Fatal("the listener's read did not end after the client and the listener closed")
	}
}
