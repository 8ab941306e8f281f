//go:build !linux && !darwin && !freebsd && !windows

package transport

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestUnsupportedOS(t *testing.T) {
	_, listenErr := Listen("eventbus.sock")
	_, dialErr := Dial(context.Background(), "eventbus.sock")
	_, peerErr := PeerOf(nil)
	for name, err := range map[string]error{"Listen": listenErr, "Dial": dialErr, "PeerOf": peerErr} {
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), runtime.GOOS) {
			t.Errorf("%s: err = %v; want ErrUnsupported naming %s", name, err, runtime.GOOS)
		}
	}
}
