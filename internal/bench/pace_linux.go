package bench

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pacer sleeps until each send time with microsecond precision.
// time.Sleep cannot: below a millisecond it overshoots to the netpoller's
// millisecond timeout, which turns a 5,000 msg/s schedule into bursts of
// five. nanosleep on a locked thread with a 1 ns timer slack keeps the
// schedule.
type pacer struct{}

func newPacer() *pacer {
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) // best effort
	return &pacer{}
}

func (*pacer) sleepUntil(t time.Time) {
	for d := time.Until(t); d > 0; d = time.Until(t) {
		ts := unix.NsecToTimespec(int64(d))
		unix.Nanosleep(&ts, nil)
	}
}

func (*pacer) stop() { runtime.UnlockOSThread() }
