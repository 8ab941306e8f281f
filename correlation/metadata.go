package correlation

import (
	"errors"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits of docs/CORRELATION.md. Validate and Filter.Compile enforce them with an
// error; nothing is ever truncated.
const (
	MaxIDBytes       = 256  // correlation, parent and root ids
	MaxStageBytes    = 128  // workflow stage
	MaxSourceBytes   = 128  // source process; not in §5's list, bounded like a stage
	MaxTags          = 64   // tags on one message
	MaxTagKeyBytes   = 128  // one tag key
	MaxTagValueBytes = 1024 // one tag value
)

// ErrInvalid matches (errors.Is) every error that rejects metadata, a
// filter, a wait condition or a tracker configuration.
var ErrInvalid = errors.New("correlation: invalid input")

// ValidationError names the field that broke a rule and the rule, e.g.
// "correlation: tag key too long: 130 bytes, limit 128".
type ValidationError struct {
	Field string // "correlation id", "tag key", `tag "host" value`, ...
	Rule  string // "empty", "too long: 300 bytes, limit 256", ...
}

// Error returns the message.
func (e *ValidationError) Error() string { return "correlation: " + e.Field + " " + e.Rule }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, rule string) error { return &ValidationError{Field: field, Rule: rule} }

func tooLong(field string, n, limit int) error {
	return invalid(field, fmt.Sprintf("too long: %d bytes, limit %d", n, limit))
}

// Metadata is the correlation metadata a message may carry (docs/CORRELATION.md).
type Metadata struct {
	CorrelationID string // this correlation; required
	ParentID      string // the correlation this one was derived from; empty for none
	RootID        string // the workflow's root correlation; required
	Sequence      uint64 // the publisher's message number within CorrelationID (see Sequencer)
	Stage         string // workflow stage, e.g. "enumeration"
	SourceProcess string // the process that created the metadata, as it says
	Tags          map[string]string
	StartedAt     time.Time // when the correlation started
}

// Option sets a field of new metadata (New, NewChild).
type Option func(*Metadata)

// WithStage sets the workflow stage.
func WithStage(stage string) Option { return func(m *Metadata) { m.Stage = stage } }

// WithSource sets the source process.
func WithSource(process string) Option { return func(m *Metadata) { m.SourceProcess = process } }

// WithTag sets one tag.
func WithTag(key, value string) Option {
	return func(m *Metadata) {
		if m.Tags == nil {
			m.Tags = make(map[string]string)
		}
		m.Tags[key] = value
	}
}

// WithStartedAt overrides the start time (default: now).
func WithStartedAt(t time.Time) Option { return func(m *Metadata) { m.StartedAt = t } }

// NewID returns a new time-ordered id: a UUIDv7 string. Ids from one process
// sort in the order they were made.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// New returns metadata for a new root workflow: a fresh id that is both the
// correlation id and the root id, started now, with opts applied.
func New(opts ...Option) Metadata {
	id := NewID()
	m := Metadata{CorrelationID: id, RootID: id, StartedAt: time.Now()}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// NewChild returns metadata for a correlation derived from m: a fresh id,
// parent m.CorrelationID, the same root, stage, source and tags (the map is
// copied), sequence 0 and started now; then opts are applied.
func (m Metadata) NewChild(opts ...Option) Metadata {
	c := m.Clone()
	c.ParentID = m.CorrelationID
	c.CorrelationID = NewID()
	c.Sequence = 0
	c.StartedAt = time.Now()
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Clone returns a copy of m that shares no map with it.
func (m Metadata) Clone() Metadata {
	if m.Tags != nil {
		m.Tags = maps.Clone(m.Tags)
	}
	return m
}

// Validate reports the first limit m breaks (see the Max constants): ids
// and root must be non-empty, every string valid UTF-8 and within its limit,
// and a correlation cannot be its own parent.
func (m Metadata) Validate() error {
	_, err := checkMetadata(&m)
	return err
}

// checkMetadata is Validate that also returns the bytes of the tags, so Record
// walks the tag map once. It allocates only to report an error.
func checkMetadata(m *Metadata) (tagBytes int, err error) {
	if err := checkText("correlation id", m.CorrelationID, MaxIDBytes, true); err != nil {
		return 0, err
	}
	if err := checkText("root id", m.RootID, MaxIDBytes, true); err != nil {
		return 0, err
	}
	if err := checkText("parent id", m.ParentID, MaxIDBytes, false); err != nil {
		return 0, err
	}
	if m.ParentID != "" && m.ParentID == m.CorrelationID {
		return 0, invalid("parent id", "equals correlation id")
	}
	if err := checkText("stage", m.Stage, MaxStageBytes, false); err != nil {
		return 0, err
	}
	if err := checkText("source process", m.SourceProcess, MaxSourceBytes, false); err != nil {
		return 0, err
	}
	return checkTags("tag", m.Tags)
}

func badText(s string, limit int, required bool) bool {
	return s == "" && required || len(s) > limit || !utf8.ValidString(s)
}

// checkText checks one string field against its byte limit.
func checkText(field, s string, limit int, required bool) error {
	switch {
	case s == "" && required:
		return invalid(field, "empty")
	case len(s) > limit:
		return tooLong(field, len(s), limit)
	case !utf8.ValidString(s):
		return invalid(field, "not valid UTF-8")
	}
	return nil
}

// checkTags checks a tag map and adds up its bytes; what names it in
// errors ("tag", "filter required tag"). Field names are built only on
// failure: this runs on every Record.
func checkTags(what string, tags map[string]string) (tagBytes int, err error) {
	if len(tags) > MaxTags {
		return 0, invalid(what+" count", fmt.Sprintf("too large: %d, limit %d", len(tags), MaxTags))
	}
	for k, v := range tags {
		if badText(k, MaxTagKeyBytes, true) {
			return 0, checkText(what+" key", k, MaxTagKeyBytes, true)
		}
		if badText(v, MaxTagValueBytes, false) {
			return 0, checkText(fmt.Sprintf("%s %q value", what, k), v, MaxTagValueBytes, false)
		}
		tagBytes += len(k) + len(v)
	}
	return tagBytes, nil
}
