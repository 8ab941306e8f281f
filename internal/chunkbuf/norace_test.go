//go:build !race

package chunkbuf

const raceEnabled = false
