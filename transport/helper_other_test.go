//go:build !linux

package transport

// helperMain: only the Linux tests run helper processes (as another user).
func helperMain(string) int { return 2 }
