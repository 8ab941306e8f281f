//go:build race

package chunkbuf

const raceEnabled = true
