//go:build linux && race

package hostile_test

// raceEnabled: the race detector's shadow memory multiplies the broker's
// resident size, so the memory attacks are sized down under it.
const raceEnabled = true
