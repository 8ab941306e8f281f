//go:build linux

package coord

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"

	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/wire"
)

// rawSubscribe subscribes the raw connection r to pattern as subscription
// 1, a responder if responder is set.
func rawSubscribe(t *testing.T, r *testutil.Raw, pattern string, responder bool) {
	t.Helper()
	r.Send(wire.TypeSubscribe, &wire.Subscribe{RequestId: 1, SubscriptionId: 1, Patterns: []string{pattern}, Responder: responder})
	r.Expect(wire.TypeOK)
}

// rawDeliver reads r's next frame, a DELIVER, and decodes it.
func rawDeliver(t *testing.T, r *testutil.Raw) wire.DeliverView {
	t.Helper()
	body := r.Expect(wire.TypeDeliver)
	var v wire.DeliverView
	if err := wire.DecodeDeliver(body, &v); err != nil {
		t.Fatalf("DELIVER: %v", err)
	}
	return v
}

// TestForgedReplyDropped: a peer that is not a holder of a request cannot
// answer it, whatever token it names: tokens it guesses, and the request's
// real token itself, leaked to it, sent from its own connection in the
// requester's own process (same pid and uid as the genuine responder). The
// broker counts each as dropped, the peer's connection stays open without
// an error, the requester process, waiting all along, gets the genuine
// reply and only that, and the genuine responder's second reply, a replay,
// is dropped too.
func TestForgedReplyDropped(t *testing.T) {
	path := testutil.SocketPath(t)
	startBroker(t, path)
	responder := testutil.HandshakeRaw(t, path)
	rawSubscribe(t, responder, "svc.#", true)
	attacker := testutil.HandshakeRaw(t, path)
	rawSubscribe(t, attacker, "#", false)
	stats := dial(t, path, "stats")

	req := startHelper(t, "requester", "requester", nil, "-socket", path, "-topic", "svc.op", "-n", "1", "-window", "1")
	got := rawDeliver(t, responder)
	if got.RequestID == 0 || got.ReplyToken == 0 || string(got.Payload) != "0" {
		t.Fatalf("responder got request_id %d reply_token %x payload %q; want the request, with a token", got.RequestID, got.ReplyToken, got.Payload)
	}
	token := got.ReplyToken
	seen := rawDeliver(t, attacker)
	if seen.RequestID != got.RequestID || seen.ReplyToken != 0 {
		t.Fatalf("the plain subscriber got request_id %d reply_token %x; want the request (id %d) without a token",
			seen.RequestID, seen.ReplyToken, got.RequestID)
	}

	// Guesses near the token and at random, then the token itself.
	forged := []uint64{0, token - 1, token + 1, token ^ 1<<63, ^token}
	for range 256 {
		var b [8]byte
		rand.Read(b[:])
		forged = append(forged, binary.LittleEndian.Uint64(b[:]))
	}
	forged = append(forged, token)
	var frames []byte
	for i, tok := range forged {
		frames = wire.AppendFrame(frames, wire.TypeReply, &wire.Reply{ReplyToken: tok, Payload: []byte("forged " + strconv.Itoa(i))})
	}
	frames = wire.AppendFrame(frames, wire.TypeReply, &wire.Reply{ReplyToken: token,
		Error: &wire.ReplyError{Code: "forged", Message: "forged error reply", Category: "client"}})
	attacker.Write(frames)
	attacker.Ping(1) // the broker has read every forgery; no ERROR frame came
	if rs := requestStats(t, stats); rs.RepliesDropped != uint64(len(forged)+1) || rs.Replies != 0 || rs.Pending != 1 {
		t.Fatalf("after %d forged replies, broker request stats %+v; want them all dropped, the request still pending", len(forged)+1, rs)
	}

	genuine := secret(t, "genuine-")
	responder.Send(wire.TypeReply, &wire.Reply{ReplyToken: token, Payload: []byte(genuine)})
	req.WaitOK(t, waitTimeout)
	want := fmt.Sprintf("reply 0 pid=%d payload=%q", os.Getpid(), genuine)
	if l := lineOf(t, req, "reply "); l != want || len(linesWith(req, "reply ")) != 1 || len(linesWith(req, "fail ")) != 0 {
		t.Errorf("requester printed %q; want only %q:\n%s", l, want, req.Stdout.String())
	}

	// The holder answered; its second reply is a replay, and dropped.
	responder.Send(wire.TypeReply, &wire.Reply{ReplyToken: token, Payload: []byte("replayed")})
	responder.Ping(2)
	if rs := requestStats(t, stats); rs.RepliesDropped != uint64(len(forged)+2) || rs.Replies != 1 || rs.Pending != 0 {
		t.Errorf("after the genuine reply and its replay, broker request stats %+v; want 1 reply, %d dropped, none pending", rs, len(forged)+2)
	}
	attacker.Ping(3)
}
