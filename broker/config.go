package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// Defaults for Config's zero values.
const (
	DefaultMaxConnections    = 100
	DefaultMessageBufferSize = 10000
	DefaultMaxPendingBytes   = 64 << 20
	// DefaultMaxPendingBytesAnonymous bounds an anonymous peer's queue.
	DefaultMaxPendingBytesAnonymous = 2 << 20
	DefaultMaxMessageSize           = 1 << 20
	DefaultMaxSubscriptions         = 10000
	DefaultHandshakeTimeout         = 5 * time.Second
	// DefaultWriteTimeout closes a peer that takes nothing from its socket
	// for this long while frames wait for it.
	DefaultWriteTimeout = 5 * time.Second
	DefaultSocketMode   = 0o600
	// DefaultIdleTimeout closes a connection that does nothing.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultLogLinesPerSecond bounds the connection log lines per uid.
	DefaultLogLinesPerSecond = 10
	// DefaultMaxQueryBytes bounds what one query or wait holds.
	DefaultMaxQueryBytes = 4 << 20
	// DefaultMaxCorrelationBytes bounds what one connection's correlation
	// refs hold.
	DefaultMaxCorrelationBytes = 1 << 20
	// DefaultMaxQueryMemory bounds what all queries and waits in progress
	// hold together.
	DefaultMaxQueryMemory = 128 << 20
	// DefaultMaxWaits and DefaultMaxWaitsPerUID bound the waits in
	// progress per connection and per user.
	DefaultMaxWaits = 16
	// DefaultMaxPendingRequests bounds one connection's requests in
	// flight; DefaultMaxRequestTimeout a request's life without a reply;
	// DefaultMaxRequestBytes what the broker keeps, in all, to give
	// requests to another queue group member.
	DefaultMaxPendingRequests = 1024
	DefaultMaxRequestTimeout  = 30 * time.Second
	DefaultMaxRequestBytes    = 64 << 20
	// A registered collector heartbeats every DefaultHeartbeatInterval; it
	// is unhealthy after DefaultUnhealthyAfter missed beats and expired
	// after DefaultExpireAfter.
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultUnhealthyAfter    = 3
	DefaultExpireAfter       = 10
	DefaultMaxWaitsPerUID    = 64
	// maxMaxQueryBytes keeps a query's reply well within the frame a
	// client reads.
	maxMaxQueryBytes = 32 << 20

	// Hard ceilings a config may not exceed: the frame length field is 32
	// bits and per-connection memory must stay bounded.
	maxMaxPendingBytes = 1 << 30
)

// SlowPolicy is what the broker does when a subscriber's queue is full.
type SlowPolicy string

const (
	// SlowDrop drops the message for that subscriber, counts it and later
	// tells the subscriber how many it missed.
	SlowDrop SlowPolicy = "drop"
	// SlowDisconnect closes the subscriber's connection.
	SlowDisconnect SlowPolicy = "disconnect"
)

// Config is the broker's configuration, as Go values and as the YAML file
// `eventbus broker --config` reads. A zero field takes its default.
type Config struct {
	// SocketPath is where ListenAndServe listens; default transport.DefaultPath().
	SocketPath string `yaml:"socket_path"`
	// SocketMode is the socket file's permission bits; default 0600.
	// Windows pipes have no mode: there it is ignored (see PipeSDDL).
	SocketMode Mode `yaml:"socket_mode"`
	// SharedSocketDir lets the socket's directory be one that the group or
	// others may write, or that another user owns (for a shared-group
	// deployment, docs/SECURITY.md §5); by default such a directory is
	// refused, since whoever can write it can replace the socket.
	SharedSocketDir bool `yaml:"shared_socket_dir"`
	// PipeSDDL is the security descriptor of the Windows named pipe, in
	// SDDL form; default transport.DefaultSDDL (the broker's user, SYSTEM
	// and Administrators only). Windows checks it when ListenAndServe
	// creates the pipe; Unix sockets ignore it (see SocketMode).
	PipeSDDL string `yaml:"pipe_sddl"`
	// MaxConnections is the most client connections at once; default 100.
	MaxConnections int `yaml:"max_connections"`
	// MessageBufferSize is the most messages queued per subscriber
	// connection; default 10000.
	MessageBufferSize int `yaml:"message_buffer_size"`
	// MaxPendingBytes bounds the bytes queued per subscriber connection;
	// default 64 MiB.
	MaxPendingBytes int `yaml:"max_pending_bytes"`
	// MaxPendingBytesAnonymous is MaxPendingBytes for anonymous peers,
	// whose connections are many and trusted with nothing; default 2 MiB
	// (at least MaxMessageSize, at most MaxPendingBytes).
	MaxPendingBytesAnonymous int `yaml:"max_pending_bytes_anonymous"`
	// MaxMessageSize is the largest payload accepted, in bytes; default 1 MiB.
	MaxMessageSize int `yaml:"max_message_size"`
	// MaxSubscriptions is the most patterns one connection may hold;
	// default 10000.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// EnableStatistics turns per-topic counts and latency histograms on;
	// default true. Drop and connection counts are always kept.
	EnableStatistics *bool `yaml:"enable_statistics"`
	// SlowSubscriberPolicy is "drop" (default) or "disconnect".
	SlowSubscriberPolicy SlowPolicy `yaml:"slow_subscriber_policy"`
	// HandshakeTimeout bounds the time from accept to a complete hello;
	// default 5s. When every connection slot is taken, a new connection
	// takes the slot of the oldest one still in its handshake.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// WriteTimeout bounds one write to a peer: one that takes nothing
	// for this long is closed as a slow consumer, since the publishes
	// waiting for it cannot be confirmed (docs/PROTOCOL.md §5.3.2).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// ReservedConnections is how many of MaxConnections are kept for
	// registered components and the agent: an anonymous peer is refused at
	// hello while fewer would stay free; default a tenth of
	// MaxConnections.
	ReservedConnections int `yaml:"reserved_connections"`
	// MaxConnectionsPerUID bounds the socket connections of one uid (one
	// SID on Windows), counted at accept. The broker's own user and root
	// (LocalSystem) are exempt: they run the agent and the collectors.
	// Default half of MaxConnections.
	MaxConnectionsPerUID int `yaml:"max_connections_per_uid"`
	// IdleTimeout closes a connection that has sent nothing, held no
	// subscription and waited for nothing for this long; default 10m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// LogLinesPerSecond bounds the connection log lines (refused, closed)
	// one uid causes per second; the next line says how many similar ones
	// were suppressed. Default 10.
	LogLinesPerSecond int `yaml:"log_lines_per_second"`
	// MaxQueryBytes bounds the events one history query or wait holds and
	// returns, payloads included; the most recent that fit are returned
	// and the reply says it was truncated. Default 4 MiB, at most 32 MiB.
	MaxQueryBytes int `yaml:"max_query_bytes"`
	// MaxSubscriptionsPerUID bounds the patterns one user (SID on Windows)
	// holds across its connections; default 10 times MaxSubscriptions.
	MaxSubscriptionsPerUID int `yaml:"max_subscriptions_per_uid"`
	// MaxCorrelationBytes bounds what the correlation refs one connection
	// defines hold (PROTOCOL.md §5.3.1): a definition past it is refused
	// and its ref left undefined. Default 1 MiB, at least twice the
	// largest metadata.
	MaxCorrelationBytes int `yaml:"max_correlation_bytes"`
	// MaxQueryMemory bounds what all history queries and waits in progress
	// hold together, each counted at twice MaxQueryBytes (its events and
	// their encoding) from when it starts until its answer is written;
	// anonymous peers may hold a quarter of it, and the agent is not
	// counted. A query or wait past it is refused. Default 128 MiB, at
	// least 8 times MaxQueryBytes.
	MaxQueryMemory int `yaml:"max_query_memory"`
	// MaxWaits bounds the waits in progress on one connection; default 16.
	MaxWaits int `yaml:"max_waits"`
	// MaxWaitsPerUID bounds the waits in progress of one user (SID on
	// Windows) across its connections; default 64.
	MaxWaitsPerUID int `yaml:"max_waits_per_uid"`
	// MaxPendingRequests bounds the requests one connection has waiting
	// for a reply (docs/PROTOCOL.md §5.9); default 1024.
	MaxPendingRequests int `yaml:"max_pending_requests"`
	// MaxRequestTimeout bounds a request's deadline; default 30s.
	MaxRequestTimeout time.Duration `yaml:"max_request_timeout"`
	// MaxRequestBytes bounds the copies of requests kept to give to
	// another queue group member if the one holding it goes; default 64 MiB.
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// HeartbeatInterval is how often registered collectors heartbeat
	// (docs/PROTOCOL.md §5.10); default 5s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// UnhealthyAfter and ExpireAfter count missed heartbeats: a collector
	// is marked unhealthy after the first, and expired (its connection
	// closed) after the second; defaults 3 and 10.
	UnhealthyAfter int `yaml:"heartbeat_unhealthy_after"`
	ExpireAfter    int `yaml:"heartbeat_expire_after"`
	// HistoryMaxEvents bounds the correlation history (docs/CORRELATION.md), oldest
	// evicted first; default 10000.
	HistoryMaxEvents int `yaml:"history_max_events"`
	// HistoryMaxBytes bounds the history's bytes, payloads included;
	// default 64 MiB.
	HistoryMaxBytes int `yaml:"history_max_bytes"`
	// WorkflowIdleTimeout expires a workflow with no new event for this
	// long (its events stay in the history); default 1h.
	WorkflowIdleTimeout time.Duration `yaml:"workflow_idle_timeout"`
	// PolicyFile is the access-control policy (docs/SECURITY.md); empty
	// means the built-in policy (docs/SECURITY.md §3), which admits components from
	// the broker's own uid and root.
	PolicyFile string `yaml:"policy_file"`
	// AgentTokenFile holds the credential a client presents to prove it is
	// the agent; the broker creates it (0600) if missing. The policy's
	// agent.token_file takes precedence. Empty, with no policy setting,
	// means only the in-process client is the agent.
	AgentTokenFile string `yaml:"agent_token_file"`
	// Policy, if set, is used instead of PolicyFile.
	Policy *acl.Policy `yaml:"-"`
	// Logger receives the broker's logs; default discards them.
	Logger *slog.Logger `yaml:"-"`
}

// Mode is a file permission mode; YAML spells it in octal, as 0600 or "0660".
type Mode fs.FileMode

// UnmarshalYAML parses the octal text as written, since YAML 1.2 would read
// 0600 as decimal 600.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseUint(n.Value, 8, 32)
	if err != nil || v > 0o777 {
		return fmt.Errorf("line %d: %q is not an octal mode like 0600", n.Line, n.Value)
	}
	*m = Mode(v)
	return nil
}

// ConfigError names the field at fault and, for a file, its line.
type ConfigError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error returns the message.
func (e *ConfigError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("eventbus: config %s line %d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	case e.File != "":
		return fmt.Sprintf("eventbus: config %s: %s", e.File, e.Msg)
	default:
		return fmt.Sprintf("eventbus: config: %s: %s", e.Field, e.Msg)
	}
}

// ListenOptions are the transport options for the configured endpoint:
// the socket's mode, the pipe's descriptor and whether a shared directory
// is allowed.
func (c Config) ListenOptions() []transport.ListenOption {
	c = c.withDefaults()
	opts := []transport.ListenOption{transport.WithMode(os.FileMode(c.SocketMode)), transport.WithSDDL(c.PipeSDDL)}
	if c.SharedSocketDir {
		opts = append(opts, transport.AllowSharedDir())
	}
	return opts
}

// StatisticsEnabled reports the effective EnableStatistics.
func (c Config) StatisticsEnabled() bool { return c.EnableStatistics == nil || *c.EnableStatistics }

// withDefaults returns a copy with every zero field set to its default.
func (c Config) withDefaults() Config {
	setDefault(&c.SocketMode, DefaultSocketMode)
	setDefault(&c.PipeSDDL, transport.DefaultSDDL)
	setDefault(&c.MaxConnections, DefaultMaxConnections)
	setDefault(&c.MessageBufferSize, DefaultMessageBufferSize)
	setDefault(&c.MaxPendingBytes, DefaultMaxPendingBytes)
	setDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&c.MaxPendingBytesAnonymous, min(max(DefaultMaxPendingBytesAnonymous, c.MaxMessageSize), c.MaxPendingBytes))
	setDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&c.MaxSubscriptions, DefaultMaxSubscriptions)
	setDefault(&c.SlowSubscriberPolicy, SlowDrop)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.ReservedConnections, c.MaxConnections/10)
	setDefault(&c.MaxConnectionsPerUID, max(c.MaxConnections/2, 1))
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.LogLinesPerSecond, DefaultLogLinesPerSecond)
	setDefault(&c.MaxQueryBytes, DefaultMaxQueryBytes)
	setDefault(&c.MaxQueryMemory, max(DefaultMaxQueryMemory, 8*c.MaxQueryBytes))
	setDefault(&c.MaxCorrelationBytes, DefaultMaxCorrelationBytes)
	setDefault(&c.MaxSubscriptionsPerUID, 10*c.MaxSubscriptions)
	setDefault(&c.MaxWaits, DefaultMaxWaits)
	setDefault(&c.MaxPendingRequests, DefaultMaxPendingRequests)
	setDefault(&c.MaxRequestTimeout, DefaultMaxRequestTimeout)
	setDefault(&c.MaxRequestBytes, DefaultMaxRequestBytes)
	setDefault(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	setDefault(&c.UnhealthyAfter, DefaultUnhealthyAfter)
	setDefault(&c.ExpireAfter, DefaultExpireAfter)
	setDefault(&c.MaxWaitsPerUID, DefaultMaxWaitsPerUID)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// minHistoryBytes is the least history_max_bytes that holds any accepted
// correlated message: its frame (the payload and everything around it,
// metadata included), the publisher's component and the history's own
// per-event bytes. So the broker never has to refuse a message it has
// already delivered for being too large to record.
func minHistoryBytes(maxMessageSize int) int64 {
	return int64(maxMessageSize) + wire.FrameOverhead + maxNameLen + correlation.MaxEventOverhead
}

// Validate checks every field of c with its defaults applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	positive := []struct {
		field string
		v     int
	}{
		{"max_connections", c.MaxConnections},
		{"message_buffer_size", c.MessageBufferSize},
		{"max_pending_bytes", c.MaxPendingBytes},
		{"max_pending_bytes_anonymous", c.MaxPendingBytesAnonymous},
		{"max_message_size", c.MaxMessageSize},
		{"max_subscriptions", c.MaxSubscriptions},
		{"history_max_events", c.HistoryMaxEvents},
		{"history_max_bytes", c.HistoryMaxBytes},
		{"reserved_connections", c.ReservedConnections},
		{"max_connections_per_uid", c.MaxConnectionsPerUID},
		{"log_lines_per_second", c.LogLinesPerSecond},
		{"max_query_bytes", c.MaxQueryBytes},
		{"max_query_memory", c.MaxQueryMemory},
		{"max_correlation_bytes", c.MaxCorrelationBytes},
		{"max_subscriptions_per_uid", c.MaxSubscriptionsPerUID},
		{"max_waits", c.MaxWaits},
		{"max_waits_per_uid", c.MaxWaitsPerUID},
		{"max_pending_requests", c.MaxPendingRequests},
		{"max_request_bytes", c.MaxRequestBytes},
		{"heartbeat_unhealthy_after", c.UnhealthyAfter},
		{"heartbeat_expire_after", c.ExpireAfter},
	}
	for _, p := range positive {
		if p.v < 0 {
			return &ConfigError{Field: p.field, Msg: fmt.Sprintf("must not be negative, got %d (0 means the default)", p.v)}
		}
	}
	switch {
	case c.MaxMessageSize > wire.MaxMessageSize:
		return &ConfigError{Field: "max_message_size", Msg: fmt.Sprintf("%d bytes exceeds the ceiling %d", c.MaxMessageSize, wire.MaxMessageSize)}
	case c.MaxPendingBytes > maxMaxPendingBytes:
		return &ConfigError{Field: "max_pending_bytes", Msg: fmt.Sprintf("%d bytes exceeds the ceiling %d", c.MaxPendingBytes, maxMaxPendingBytes)}
	case c.MaxPendingBytes < c.MaxMessageSize:
		return &ConfigError{Field: "max_pending_bytes", Msg: fmt.Sprintf("%d is smaller than max_message_size %d: no message could be queued", c.MaxPendingBytes, c.MaxMessageSize)}
	case c.MaxPendingBytesAnonymous < c.MaxMessageSize || c.MaxPendingBytesAnonymous > c.MaxPendingBytes:
		return &ConfigError{Field: "max_pending_bytes_anonymous", Msg: fmt.Sprintf("%d is not between max_message_size %d and max_pending_bytes %d",
			c.MaxPendingBytesAnonymous, c.MaxMessageSize, c.MaxPendingBytes)}
	case c.SlowSubscriberPolicy != SlowDrop && c.SlowSubscriberPolicy != SlowDisconnect:
		return &ConfigError{Field: "slow_subscriber_policy", Msg: fmt.Sprintf("%q is not one of drop, disconnect", c.SlowSubscriberPolicy)}
	case c.WorkflowIdleTimeout < 0:
		return &ConfigError{Field: "workflow_idle_timeout", Msg: fmt.Sprintf("must not be negative, got %v (0 means the default)", c.WorkflowIdleTimeout)}
	case c.ReservedConnections >= c.MaxConnections:
		return &ConfigError{Field: "reserved_connections", Msg: fmt.Sprintf("%d leaves no connection of max_connections %d for anonymous peers", c.ReservedConnections, c.MaxConnections)}
	case c.MaxQueryMemory < 8*c.MaxQueryBytes:
		return &ConfigError{Field: "max_query_memory", Msg: fmt.Sprintf("%d bytes is less than 4 queries of twice max_query_bytes %d: anonymous peers, who may hold a quarter, could run none", c.MaxQueryMemory, c.MaxQueryBytes)}
	case c.MaxQueryBytes > maxMaxQueryBytes:
		return &ConfigError{Field: "max_query_bytes", Msg: fmt.Sprintf("%d bytes exceeds the ceiling %d", c.MaxQueryBytes, maxMaxQueryBytes)}
	case c.IdleTimeout < 0:
		return &ConfigError{Field: "idle_timeout", Msg: fmt.Sprintf("must not be negative, got %v (0 means the default)", c.IdleTimeout)}
	case c.HandshakeTimeout < 0:
		return &ConfigError{Field: "handshake_timeout", Msg: fmt.Sprintf("must not be negative, got %v (0 means the default)", c.HandshakeTimeout)}
	case c.HeartbeatInterval < 0:
		return &ConfigError{Field: "heartbeat_interval", Msg: fmt.Sprintf("must not be negative, got %v (0 means the default)", c.HeartbeatInterval)}
	case c.ExpireAfter > 0 && c.UnhealthyAfter > 0 && c.ExpireAfter <= c.UnhealthyAfter:
		return &ConfigError{Field: "heartbeat_expire_after", Msg: fmt.Sprintf("%d must be more than heartbeat_unhealthy_after %d", c.ExpireAfter, c.UnhealthyAfter)}
	case c.MaxRequestTimeout < 0:
		return &ConfigError{Field: "max_request_timeout", Msg: fmt.Sprintf("must not be negative, got %v (0 means the default)", c.MaxRequestTimeout)}
	case c.WriteTimeout < 0:
		return &ConfigError{Field: "write_timeout", Msg: fmt.Sprintf("must not be negative, got %v (0 means the default)", c.WriteTimeout)}
	case c.HistoryMaxBytes != 0 && int64(c.HistoryMaxBytes) < minHistoryBytes(c.MaxMessageSize),
		c.HistoryMaxBytes == 0 && correlation.DefaultMaxBytes < minHistoryBytes(c.MaxMessageSize):
		return &ConfigError{Field: "history_max_bytes", Msg: fmt.Sprintf("%d bytes (0: the default, %d) cannot hold the largest correlated message: need at least %d for max_message_size %d",
			c.HistoryMaxBytes, correlation.DefaultMaxBytes, minHistoryBytes(c.MaxMessageSize), c.MaxMessageSize)}
	case fs.FileMode(c.SocketMode)&^fs.ModePerm != 0:
		return &ConfigError{Field: "socket_mode", Msg: fmt.Sprintf("%#o has bits beyond permissions", uint32(c.SocketMode))}
	}
	return nil
}

// LoadConfig reads a YAML config file. Unknown fields, wrong types and
// invalid values are refused with the line and field at fault.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("eventbus: config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses YAML config data; name labels errors.
func ParseConfig(name string, data []byte) (Config, error) {
	var cfg Config
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return cfg, &ConfigError{File: name, Msg: err.Error()}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, yamlError(name, &doc, err)
	}
	if err := cfg.Validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File, ce.Line = name, keyLine(&doc, ce.Field)
		}
		return cfg, err
	}
	return cfg, nil
}

// yamlError turns yaml's decode error into a ConfigError naming the
// first problem's line and field.
func yamlError(name string, doc *yaml.Node, err error) error {
	first := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		first = te.Errors[0]
	}
	var line int
	if _, scanErr := fmt.Sscanf(first, "line %d:", &line); scanErr != nil {
		return &ConfigError{File: name, Msg: first}
	}
	field := keyAtLine(doc, line)
	if field == "" {
		return &ConfigError{File: name, Msg: first}
	}
	msg := strings.TrimSpace(first[strings.Index(first, ":")+1:])
	if strings.Contains(msg, "not found in type") {
		msg = "unknown field"
	}
	return &ConfigError{File: name, Line: line, Field: field, Msg: msg}
}

// keyAtLine finds the top-level key on a line, or "".
func keyAtLine(doc *yaml.Node, line int) string {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return ""
	}
	m := doc.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		if m[i].Line == line {
			return m[i].Value
		}
	}
	return ""
}

// keyLine finds the line of a top-level key, or 0.
func keyLine(doc *yaml.Node, key string) int {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return 0
	}
	m := doc.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		if m[i].Value == key {
			return m[i].Line
		}
	}
	return 0
}
