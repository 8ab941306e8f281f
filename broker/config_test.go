package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

func TestParseConfigValid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(c Config) string // "" if c is right
	}{
		{"every field", `
socket_path: /run/eventbus/eventbus.sock
socket_mode: 0660
pipe_sddl: D:P(A;;GA;;;SY)
max_connections: 50
message_buffer_size: 500
max_pending_bytes: 8388608
max_message_size: 65536
max_subscriptions: 20
enable_statistics: false
slow_subscriber_policy: disconnect
handshake_timeout: 2s
`, func(c Config) string {
			want := Config{SocketPath: "/run/eventbus/eventbus.sock", SocketMode: 0o660, PipeSDDL: "D:P(A;;GA;;;SY)", MaxConnections: 50, MessageBufferSize: 500,
				MaxPendingBytes: 8 << 20, MaxMessageSize: 64 << 10, MaxSubscriptions: 20, SlowSubscriberPolicy: SlowDisconnect,
				HandshakeTimeout: 2 * time.Second}
			if c.EnableStatistics == nil || *c.EnableStatistics || c.StatisticsEnabled() {
				return "enable_statistics not false"
			}
			c.EnableStatistics = nil
			if c != want {
				return "got " + sprint(c) + "; want " + sprint(want)
			}
			return ""
		}},
		{"socket_mode quoted", `socket_mode: "0660"`, func(c Config) string {
			if c.SocketMode != 0o660 {
				return "socket_mode = " + octal(c.SocketMode) + "; want 0660"
			}
			return ""
		}},
		{"socket_mode 0600", `socket_mode: 0600`, func(c Config) string {
			if c.SocketMode != 0o600 {
				return "socket_mode = " + octal(c.SocketMode) + "; want 0600"
			}
			return ""
		}},
		{"empty file takes defaults", ``, func(c Config) string {
			if c != (Config{}) {
				return "got " + sprint(c) + "; want the zero Config"
			}
			return ""
		}},
		{"comments only", "# nothing\n", func(c Config) string {
			if c != (Config{}) {
				return "got " + sprint(c) + "; want the zero Config"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig("test.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if msg := tt.want(c); msg != "" {
				t.Error(msg)
			}
			if _, err := New(c); err != nil {
				t.Errorf("New(parsed config) = %v", err)
			}
		})
	}
}

func sprint(c Config) string {
	c.Logger = nil
	return fmt.Sprintf("%+v", c)
}

func octal(m Mode) string { return fmt.Sprintf("%#o", uint32(m)) }

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name      string
		yaml      string
		field     string // ConfigError.Field, if a validation error
		line      int    // ConfigError.Line, if a validation error
		mentions  []string
		checkType bool // the error must be a *ConfigError with Field and Line
	}{
		{name: "unknown field", yaml: "max_connections: 5\nbogus_field: 1\n", mentions: []string{"line 2", "bogus_field", "test.yaml"}},
		{name: "misspelt field", yaml: "\n\nmax_conections: 5\n", mentions: []string{"line 3", "max_conections"}},
		{name: "wrong type", yaml: "max_connections: lots\n", mentions: []string{"line 1", "lots"}},
		{name: "wrong type bool", yaml: "enable_statistics: maybe\n", mentions: []string{"line 1", "maybe"}},
		{name: "wrong type duration", yaml: "handshake_timeout: soon\n", mentions: []string{"line 1", "soon"}},
		{name: "not a mapping", yaml: "- a\n- b\n", mentions: []string{"line 1"}},
		{name: "bad YAML", yaml: "max_connections: [1,\n", mentions: []string{"test.yaml"}},
		{name: "negative max_connections", yaml: "socket_path: /x\nmax_connections: -1\n", field: "max_connections", line: 2, checkType: true,
			mentions: []string{"line 2", "max_connections", "-1"}},
		{name: "negative message_buffer_size", yaml: "message_buffer_size: -5\n", field: "message_buffer_size", line: 1, checkType: true},
		{name: "max_message_size over ceiling", yaml: "max_message_size: 1073741824\n", field: "max_message_size", line: 1, checkType: true},
		{name: "pending smaller than message", yaml: "max_message_size: 2048\nmax_pending_bytes: 1024\n", field: "max_pending_bytes", line: 2, checkType: true},
		{name: "slow_subscriber_policy invalid", yaml: "\nslow_subscriber_policy: block\n", field: "slow_subscriber_policy", line: 2, checkType: true,
			mentions: []string{"block", "drop", "disconnect"}},
		{name: "socket_mode not octal", yaml: "socket_mode: 0999\n", mentions: []string{"line 1", "socket_mode", "0999"}},
		{name: "socket_mode too big", yaml: "socket_mode: 01777\n", mentions: []string{"socket_mode"}},
		{name: "socket_mode words", yaml: "socket_mode: rw-------\n", mentions: []string{"socket_mode"}},
		{name: "negative handshake_timeout", yaml: "handshake_timeout: -1s\n", field: "handshake_timeout", line: 1, checkType: true},
		{name: "history smaller than a message", yaml: "max_message_size: 65536\nhistory_max_bytes: 65536\n", field: "history_max_bytes", line: 2, checkType: true,
			mentions: []string{"history_max_bytes", "65536", "need at least"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("test.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseConfig(%q) = nil; want an error", tt.yaml)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig error %v (%T); want a *ConfigError", err, err)
			}
			if ce.File != "test.yaml" {
				t.Errorf("File = %q; want test.yaml", ce.File)
			}
			if tt.checkType && (ce.Field != tt.field || ce.Line != tt.line) {
				t.Errorf("Field, Line = %q, %d; want %q, %d (%v)", ce.Field, ce.Line, tt.field, tt.line, err)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "eventbus.yaml")
	if err := os.WriteFile(path, []byte("max_connections: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil || c.MaxConnections != 7 {
		t.Errorf("LoadConfig = %+v, %v; want max_connections 7", c.MaxConnections, err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadConfig(missing) = %v; want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte("x: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadConfig(bad) = %v; want an error naming %s", err, path)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative max_connections", Config{MaxConnections: -1}, "max_connections"},
		{"negative message_buffer_size", Config{MessageBufferSize: -1}, "message_buffer_size"},
		{"negative max_pending_bytes", Config{MaxPendingBytes: -1}, "max_pending_bytes"},
		{"negative max_message_size", Config{MaxMessageSize: -1}, "max_message_size"},
		{"negative max_subscriptions", Config{MaxSubscriptions: -1}, "max_subscriptions"},
		{"max_message_size over ceiling", Config{MaxMessageSize: 1 << 30}, "max_message_size"},
		{"max_pending_bytes over ceiling", Config{MaxPendingBytes: 2 << 30}, "max_pending_bytes"},
		{"pending below message size", Config{MaxMessageSize: 4096, MaxPendingBytes: 1024}, "max_pending_bytes"},
		{"policy", Config{SlowSubscriberPolicy: "block"}, "slow_subscriber_policy"},
		{"handshake timeout", Config{HandshakeTimeout: -time.Second}, "handshake_timeout"},
		{"socket mode", Config{SocketMode: Mode(fs.ModeSetuid | 0o600)}, "socket_mode"},
		{"history smaller than a message", Config{MaxMessageSize: 1 << 20, HistoryMaxBytes: 1 << 20}, "history_max_bytes"},
		{"default history smaller than a message", Config{MaxMessageSize: 64 << 20, MaxPendingBytes: 128 << 20}, "history_max_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.cfg)
			if err == nil {
				b.Close()
				t.Fatalf("New(%s) = nil error; want a ConfigError for %s", tt.name, tt.field)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Errorf("New = %v; want a *ConfigError with Field %q", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	in := Config{MaxConnections: 3}
	b, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if in != (Config{MaxConnections: 3}) {
		t.Errorf("New modified the caller's Config: %+v", in)
	}
	c := b.Config()
	checks := []struct {
		name      string
		got, want any
	}{
		{"MaxConnections (set)", c.MaxConnections, 3},
		{"MessageBufferSize", c.MessageBufferSize, 10000},
		{"MaxMessageSize", c.MaxMessageSize, 1 << 20},
		{"MaxPendingBytes", c.MaxPendingBytes, 64 << 20},
		{"MaxSubscriptions", c.MaxSubscriptions, 10000},
		{"SocketMode", c.SocketMode, Mode(0o600)},
		{"PipeSDDL", c.PipeSDDL, transport.DefaultSDDL},
		{"SlowSubscriberPolicy", c.SlowSubscriberPolicy, SlowDrop},
		{"HandshakeTimeout", c.HandshakeTimeout, 5 * time.Second},
		{"StatisticsEnabled", c.StatisticsEnabled(), true},
		{"Logger set", c.Logger != nil, true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("Config().%s = %v; want %v", ch.name, ch.got, ch.want)
		}
	}
	d, path := startBroker(t, Config{})
	if got := d.Config().MaxConnections; got != 100 {
		t.Errorf("default MaxConnections = %d; want 100", got)
	}
	// The HELLO_OK a client sees states the effective limits.
	raw := testutil.DialRaw(t, path)
	raw.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "raw"}))
	limits := raw.ReadHandshake()
	if limits.MaxMessageSize != 1<<20 || limits.MaxSubscriptions != 10000 {
		t.Errorf("HELLO_OK limits: message %d, subscriptions %d; want %d, 10000", limits.MaxMessageSize, limits.MaxSubscriptions, 1<<20)
	}
}
