//go:build !windows

package transport

import (
	"fmt"
	"os"
	"testing"
)

func TestDefaultPath(t *testing.T) {
	tmpDefault := fmt.Sprintf("/tmp/eventbus-%d/eventbus.sock", os.Getuid())
	tests := []struct {
		name, socket, runtime, want string
	}{
		{"EVENTBUS_SOCKET wins", "/srv/bus.sock", "/run/user/1000", "/srv/bus.sock"},
		{"EVENTBUS_SOCKET alone", "/srv/bus.sock", "", "/srv/bus.sock"},
		{"XDG_RUNTIME_DIR", "", "/run/user/1000", "/run/user/1000/eventbus/eventbus.sock"},
		{"relative XDG_RUNTIME_DIR is ignored", "", "run/user", tmpDefault},
		{"neither", "", "", tmpDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envSocket, tt.socket)
			t.Setenv(envRuntime, tt.runtime)
			if got := DefaultPath(); got != tt.want {
				t.Errorf("DefaultPath() with %s=%q %s=%q = %q; want %q",
					envSocket, tt.socket, envRuntime, tt.runtime, got, tt.want)
			}
		})
	}
}
