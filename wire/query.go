package wire

import "time"

// Wait timeouts (PROTOCOL.md §5.8): a WaitQuery without a timeout waits
// DefaultWaitTimeout; the broker refuses one longer than MaxWaitTimeout.
const (
	DefaultWaitTimeout = 30 * time.Second
	MaxWaitTimeout     = 10 * time.Minute
)
