package transport

import (
	"errors"
	"net"
	"testing"
)

func TestPeerOfUnsupportedConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tests := []struct {
		name string
		conn net.Conn
	}{
		{"net.Pipe", a},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PeerOf(tt.conn)
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("PeerOf(%T) = %+v, %v; want an error matching ErrUnsupported", tt.conn, got, err)
			}
		})
	}
}
