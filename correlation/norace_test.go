//go:build !race

package correlation

const raceEnabled = false
