//go:build race

package proctest

// raceEnabled: Build builds the binary with the race detector too.
const raceEnabled = true
