package transporttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus/transport"
)

func testLargeFrames(t *testing.T, f Factory) {
	addr := f.Addr(t)
	ln := listen(t, addr)
	client, server := connect(t, ln, addr)
	frame := randomBytes(largeFrame)

	// The server echoes while the client writes, so neither side waits
	// for buffer space the other never frees. One Write of the whole
	// frame: a transport must not return short without an error.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if n, err := io.CopyN(server, server, largeFrame); err != nil {
			t.Errorf("server echo: copied %d bytes: %v", n, err)
		}
	})
	wg.Go(func() {
		if n, err := client.Write(frame); n != len(frame) || err != nil {
			t.Errorf("client Write(%d bytes) = %d, %v; want %d, nil", len(frame), n, err, len(frame))
		}
	})
	got := make([]byte, largeFrame)
	if n, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("client read the echo: got %d of %d bytes: %v", n, largeFrame, err)
	}
	if !bytes.Equal(got, frame) {
		t.Errorf("echoed %d bytes differ from those written", largeFrame)
	}
}

func testConcurrentConns(t *testing.T, f Factory) {
	addr := f.Addr(t)
	ln := listen(t, addr)
	var server, clients sync.WaitGroup
	server.Go(func() { serveEcho(t, ln, concurrentClients) })
	for i := range concurrentClients {
		clients.Go(func() {
			if err := echoClient(t, addr, i); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		})
	}
	clients.Wait()
	ln.Close() // ends serveEcho's Accept if a client never connected
	server.Wait()
}

// serveEcho accepts n connections and echoes each until its client closes.
func serveEcho(t *testing.T, ln net.Listener, n int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range n {
		conn, err := ln.Accept()
		if err != nil {
			t.Errorf("Accept() = %v", err)
			return
		}
		wg.Go(func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(timeout))
			io.Copy(conn, conn) // until the client closes
		})
	}
}

// echoClient dials addr, sends a message of its own and checks the echo.
func echoClient(t *testing.T, addr string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := transport.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	msg := fmt.Appendf(nil, "client %d says %x", i, randomBytes(1024))
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("read the echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo differs: got %.40q, want %.40q (first 40 bytes)", got, msg)
	}
	return nil
}

func testCloseUnblocksAccept(t *testing.T, f Factory) {
	ln, err := transport.Listen(f.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if conn != nil {
			conn.Close()
		}
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let Accept block (not required: either order must work)
	if err := ln.Close(); err != nil {
		t.Errorf("Close() = %v; want nil", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept during Close = %v; want net.ErrClosed", err)
		}
	case <-time.After(timeout):
		t.Fatal("Accept still blocked after Close")
	}
}

func testClose(t *testing.T, f Factory) {
	addr := f.Addr(t)
	ln, err := transport.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := ln.Close(); err != nil {
			t.Errorf("Close #%d = %v; want nil", i+1, err)
		}
	}
	if conn, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
	if conn, err := dial(t, addr); !errors.Is(err, transport.ErrNoBroker) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("Dial after Close = %v; want ErrNoBroker", err)
	}
	// The endpoint is free again: a new broker can listen there.
	ln = listen(t, addr)
	client, server := connect(t, ln, addr)
	roundTrip(t, client, server, []byte("again"))
}

// testCloseKeepsConns checks what a broker's graceful shutdown relies on:
// closing the listener leaves accepted connections working, and new dials
// fail with ErrNoBroker meanwhile.
func testCloseKeepsConns(t *testing.T, f Factory) {
	addr := f.Addr(t)
	ln := listen(t, addr)
	client, server := connect(t, ln, addr)
	if err := ln.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if conn, err := dial(t, addr); !errors.Is(err, transport.ErrNoBroker) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("Dial after Close with a connection open = %v; want ErrNoBroker", err)
	}
	roundTrip(t, client, server, []byte("draining"))
	roundTrip(t, server, client, []byte("bye"))
}

// listen listens on addr and closes the listener when the test ends.
func listen(t *testing.T, addr string, opts ...transport.ListenOption) net.Listener {
	t.Helper()
	ln, err := transport.Listen(addr, opts...)
	if err != nil {
		t.Fatalf("Listen(%q) = %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial dials addr with the suite's timeout.
func dial(t *testing.T, addr string, opts ...transport.DialOption) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return transport.Dial(ctx, addr, opts...)
}

// connect dials addr and accepts the connection on ln, at the same time:
// a named pipe takes a client only while an Accept is pending. Both ends
// get the suite's deadline and are closed when the test ends.
func connect(t *testing.T, ln net.Listener, addr string, opts ...transport.DialOption) (client, server net.Conn) {
	t.Helper()
	type result struct {
		conn net.Conn
		err  error
	}
	accepted := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		accepted <- result{conn, err}
	}()
	client, err := dial(t, addr, opts...)
	if err != nil {
		ln.Close() // ends the Accept
		<-accepted
		t.Fatalf("Dial(%q) = %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })
	r := <-accepted
	if r.err != nil {
		t.Fatalf("Accept() = %v", r.err)
	}
	t.Cleanup(func() { r.conn.Close() })
	deadline := time.Now().Add(timeout)
	client.SetDeadline(deadline)
	r.conn.SetDeadline(deadline)
	return client, r.conn
}

// roundTrip writes msg on from and checks that to reads it.
func roundTrip(t *testing.T, from, to net.Conn, msg []byte) {
	t.Helper()
	if _, err := from.Write(msg); err != nil {
		t.Fatalf("Write(%q) = %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return b
}
