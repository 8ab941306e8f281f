//go:build race

package correlation

// raceEnabled: the race detector inflates memory and time; measurements skip.
const raceEnabled = true
