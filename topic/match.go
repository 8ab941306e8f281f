package topic

import "strings"

// Match reports whether pattern matches topic. It is the plain reference
// matcher: false if the pattern or the topic is invalid. Index gives the same
// answers for many patterns at once.
func Match(pattern, topic string) bool {
	if ValidatePattern(pattern) != nil || Validate(topic) != nil {
		return false
	}
	return matchValid(pattern, topic)
}

// matchValid is Match for a pattern and topic already known to be valid.
func matchValid(pattern, topic string) bool {
	// A valid pattern starting with '+' or '#' has that wildcard as its
	// whole first segment, and such patterns never see reserved topics.
	if IsReserved(topic) && (pattern[0] == '+' || pattern[0] == '#') {
		return false
	}
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		if p == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, ".")
		if p != "+" && p != t {
			return false
		}
		if !pmore {
			return !tmore
		}
		if !tmore {
			return prest == "#" // '#' also matches zero segments
		}
		pattern, topic = prest, trest
	}
}
