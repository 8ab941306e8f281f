package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func reader(b []byte) *Reader { return NewReader(bufio.NewReader(bytes.NewReader(b)), 1<<20) }

func TestHandshakeRoundTrip(t *testing.T) {
	h, err := ReadHello(reader(AppendOpening(nil, TypeHello, &Hello{ClientName: "procmond", Component: "procmond"})))
	if err != nil || h.ClientName != "procmond" || h.Component != "procmond" {
		t.Fatalf("ReadHello = %v, %v; want the hello sent", h, err)
	}
	ok, err := ReadHelloOK(reader(AppendOpening(nil, TypeHelloOK, &HelloOK{ConnectionId: 7, MaxMessageSize: 99})))
	if err != nil || ok.ConnectionId != 7 || ok.MaxMessageSize != 99 {
		t.Fatalf("ReadHelloOK = %v, %v; want the HELLO_OK sent", ok, err)
	}
	_, err = ReadHelloOK(reader(AppendRefusal(nil, Errorf(ErrorCode_ERROR_CODE_TOO_MANY_CONNECTIONS, "too many connections: limit 1"))))
	var we *Error
	if !errors.As(err, &we) || !errors.Is(err, ErrTooManyConnections) || !we.Fatal || we.Message != "too many connections: limit 1" {
		t.Errorf("ReadHelloOK of a refusal = %v; want the fatal refusal", err)
	}
}

func TestHandshakeViolations(t *testing.T) {
	otherVersion := append(append([]byte(Magic), Version+1, 0), AppendFrame(nil, TypeHello, &Hello{})...)
	tests := []struct {
		name string
		in   []byte
		read func(*Reader) error
		want error
	}{
		{"hello: bad magic", []byte("GET / HTTP/1.1\r\n"), readHello, ErrBadMagic},
		{"hello: other version", otherVersion, readHello, ErrUnsupportedVersion},
		{"hello: not a hello", AppendOpening(nil, TypePing, &Ping{}), readHello, ErrUnexpectedFrame},
		{"hello: malformed", append(AppendPreamble(nil, Version), 0, 0, 0, 2, byte(TypeHello), 0xff), readHello, ErrMalformedFrame},
		{"hello: cut short", AppendPreamble(nil, Version), readHello, io.EOF},
		{"hello_ok: not a hello_ok", AppendOpening(nil, TypePong, &Pong{}), readHelloOK, ErrUnexpectedFrame},
		{"hello_ok: other version", append(append([]byte(Magic), Version+1, 0), AppendFrame(nil, TypeHelloOK, &HelloOK{})...), readHelloOK, ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.read(reader(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("error = %v; want %v", err, tt.want)
			}
		})
	}
}

func readHello(r *Reader) error   { _, err := ReadHello(r); return err }
func readHelloOK(r *Reader) error { _, err := ReadHelloOK(r); return err }
