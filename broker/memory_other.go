//go:build !linux

package broker

// rssBytes is 0 where this package does not read the resident set size.
func rssBytes() uint64 { return 0 }
