package broker

import (
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary documents to the config parser: it must
// never panic, an error must name the source, and what it accepts must be
// a valid configuration.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("socket_path: /tmp/x.sock\nmax_connections: 10\nmessage_buffer_size: 100\n"))
	f.Add([]byte("max_message_size: 1048576\nslow_subscriber_policy: disconnect\nhistory_max_events: 5\n"))
	f.Add([]byte("workflow_idle_timeout: 1h\nenable_statistics: false\nsocket_mode: 0660\n"))
	f.Add([]byte("unknown_field: 1\n"))
	f.Add([]byte("max_connections: -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the source", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that Validate refuses: %v", err)
		}
	})
}
