package topic

// Match reports whether pattern matches topic. It is the plain reference
// matcher: false if the pattern or the topic is invalid. Index gives the same
// answers for many patterns at once.
func Match(pattern, topic string) bool {
	if ValidatePattern(pattern) != nil || Validate(topic) != nil {
		return false
	}
	return matchValid(pattern, topic)
}

// matchValid is Match for a pattern and topic already known to be valid. It
// walks both by index, as Index's cache updates call it on many topics.
func matchValid(pattern, topic string) bool {
	// A valid pattern starting with '+' or '#' has that wildcard as its
	// whole first segment, and such patterns never see reserved topics.
	if IsReserved(topic) && (pattern[0] == '+' || pattern[0] == '#') {
		return false
	}
	i, j := 0, 0 // segment starts in pattern and topic
	for {
		switch pattern[i] {
		case '#':
			return true
		case '+':
			i++
			j = segmentEnd(topic, j)
		default:
			for ; i < len(pattern) && pattern[i] != '.'; i, j = i+1, j+1 {
				if j == len(topic) || topic[j] != pattern[i] {
					return false
				}
			}
			if j < len(topic) && topic[j] != '.' {
				return false // the topic's segment is longer
			}
		}
		switch {
		case i == len(pattern):
			return j == len(topic)
		case j == len(topic):
			return pattern[i+1:] == "#" // '#' also matches zero segments
		}
		i, j = i+1, j+1
	}
}
