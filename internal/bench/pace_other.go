//go:build !linux

package bench

import "time"

// pacer falls back to time.Sleep, which is coarse below a millisecond on
// some systems: paced latency figures there come from bursts.
type pacer struct{}

func newPacer() *pacer { return &pacer{} }

func (*pacer) sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func (*pacer) stop() {}
