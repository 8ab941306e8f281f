package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// lineLimiter bounds the log lines one source makes the broker write: at
// most perSecond lines of one key (a peer's uid) per second. The next line
// logged for the key, or the janitor's flush once the window is over, says
// how many similar lines were suppressed. Safe for concurrent use.
type lineLimiter struct {
	logger    *slog.Logger
	perSecond int
	counts    *limitCounts
	now       func() time.Time

	mu   sync.Mutex
	keys map[string]*lineWindow
}

type lineWindow struct {
	start      time.Time
	logged     int
	suppressed uint64
}

// maxLogKeys bounds the keys a lineLimiter remembers; past it, it forgets
// them all (and flushes what they suppressed first).
const maxLogKeys = 1024

func newLineLimiter(logger *slog.Logger, perSecond int, counts *limitCounts) *lineLimiter {
	return &lineLimiter{logger: logger, perSecond: perSecond, counts: counts, now: time.Now, keys: make(map[string]*lineWindow)}
}

// log writes msg at level for key unless key's rate is used up.
func (l *lineLimiter) log(level slog.Level, key, msg string, args ...any) {
	if !l.logger.Enabled(context.Background(), level) {
		return
	}
	now := l.now()
	l.mu.Lock()
	w := l.keys[key]
	if w == nil {
		if len(l.keys) >= maxLogKeys {
			l.flushLocked(now, true)
		}
		w = &lineWindow{start: now}
		l.keys[key] = w
	}
	if now.Sub(w.start) >= time.Second {
		w.start, w.logged = now, 0
	}
	if w.logged >= l.perSecond {
		w.suppressed++
		l.mu.Unlock()
		l.counts.hit(limitLogLines)
		return
	}
	w.logged++
	suppressed := w.suppressed
	w.suppressed = 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	l.logger.Log(context.Background(), level, msg, args...)
}

// flush reports, for each key whose window is over, the lines it
// suppressed, and forgets keys that have been quiet for a window.
func (l *lineLimiter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(l.now(), false)
}

func (l *lineLimiter) flushLocked(now time.Time, all bool) {
	for key, w := range l.keys {
		if !all && now.Sub(w.start) < time.Second {
			continue
		}
		if w.suppressed > 0 {
			l.logger.Warn("similar log lines suppressed", "source", key, "suppressed", w.suppressed, "limit", limitLogLines.String())
		}
		delete(l.keys, key)
	}
}
