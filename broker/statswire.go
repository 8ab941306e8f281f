package broker

import (
	"cmp"
	"slices"

	"daemoneye.dev/eventbus/stats"
)

func sortedPatterns(counts map[string]int) []stats.PatternCount {
	out := make([]stats.PatternCount, 0, len(counts))
	for p, n := range counts {
		out = append(out, stats.PatternCount{Pattern: p, Subscribers: n})
	}
	slices.SortFunc(out, func(a, b stats.PatternCount) int { return cmp.Compare(a.Pattern, b.Pattern) })
	return out
}

func sortedDenials(counts map[string]uint64) []stats.DenialCount {
	out := make([]stats.DenialCount, 0, len(counts))
	for c, n := range counts {
		out = append(out, stats.DenialCount{Component: c, Count: n})
	}
	slices.SortFunc(out, func(a, b stats.DenialCount) int { return cmp.Compare(a.Component, b.Component) })
	return out
}

func sortConnections(cs []stats.Connection) {
	slices.SortFunc(cs, func(a, b stats.Connection) int { return cmp.Compare(a.ID, b.ID) })
}
