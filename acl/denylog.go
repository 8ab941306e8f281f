package acl

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// AnonymousKey is the [DenialLog] key of peers that claimed no component
// (not a valid component name, so it cannot collide with one).
const AnonymousKey = "(anonymous)"

// DenialLog counts denials and refusals per component and logs at most
// perSecond of them per component per second; the counts keep going, and
// the next line logged says how many were suppressed. It is safe for
// concurrent use.
type DenialLog struct {
	logger    *slog.Logger
	perSecond int
	now       func() time.Time // time.Now; replaced by tests

	mu    sync.Mutex
	comps map[string]*denials
}

type denials struct {
	total      uint64
	window     time.Time // start of the current one-second window
	logged     int       // lines logged in the window
	suppressed uint64    // denials not logged since the last line
}

// NewDenialLog returns a DenialLog writing to logger (nil discards) at most
// perSecond lines per component per second (perSecond <= 0 logs none; the
// counts are kept all the same).
func NewDenialLog(logger *slog.Logger, perSecond int) *DenialLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DenialLog{logger: logger, perSecond: perSecond, now: time.Now, comps: make(map[string]*denials)}
}

// Record counts err, a [*DeniedError] or [*RefusedError], under its
// component and logs it unless the component's rate is used up. Other
// errors, nil included, are ignored. The number of keys is bounded: an
// admitted component is in the policy, and anything else counts under
// [AnonymousKey] or, for a refused claim, "(refused)".
func (l *DenialLog) Record(err error) {
	var attrs []slog.Attr
	var key string
	if de, ok := errors.AsType[*DeniedError](err); ok {
		key = de.Identity.Component
		if key == "" {
			key = AnonymousKey
		}
		attrs = []slog.Attr{
			slog.String("component", key), slog.String("action", de.Action.String()),
			slog.String("topic", de.Topic), slog.String("reason", de.Reason),
			slog.Any("uid", de.Identity.UID), slog.Int("pid", de.Identity.PID),
		}
		attrs = appendSID(attrs, de.Identity.SID)
	} else if re, ok := errors.AsType[*RefusedError](err); ok {
		key = "(refused)" // the claim is the peer's word: don't let it make keys
		attrs = []slog.Attr{
			slog.String("claim", re.Component), slog.String("reason", re.Reason),
			slog.Any("uid", re.Peer.UID), slog.Int("pid", re.Peer.PID),
		}
		attrs = appendSID(attrs, re.Peer.SID)
	} else {
		return
	}
	log, suppressed := l.count(key)
	if !log {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelWarn, err.Error(), attrs...)
}

// count adds one denial under key and reports whether to log it, with the
// number suppressed since the last line logged.
func (l *DenialLog) count(key string) (log bool, suppressed uint64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.comps[key]
	if d == nil {
		d = &denials{window: now}
		l.comps[key] = d
	}
	d.total++
	if now.Sub(d.window) >= time.Second || now.Before(d.window) {
		d.window, d.logged = now, 0
	}
	if d.logged >= l.perSecond {
		d.suppressed++
		return false, 0
	}
	d.logged++
	suppressed, d.suppressed = d.suppressed, 0
	return true, suppressed
}

// Snapshot returns the number of denials so far per component key.
func (l *DenialLog) Snapshot() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]uint64, len(l.comps))
	for k, d := range l.comps {
		m[k] = d.total
	}
	return m
}

// appendSID adds the peer's Windows user, where it has one.
func appendSID(attrs []slog.Attr, sid string) []slog.Attr {
	if sid == "" {
		return attrs
	}
	return append(attrs, slog.String("sid", sid))
}
