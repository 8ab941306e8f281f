package eventbus

// maxInterned bounds an interner; when full it starts over, so ids of
// finished workflows do not crowd out the stages, tags and topics that
// recur.
const maxInterned = 4096

// interner shares equal strings decoded from one connection: topics,
// stages, tags and the ids of a workflow repeat from message to message,
// so most decodes need no new string. Owned by one goroutine; the zero
// value is ready.
type interner struct {
	m    map[string]string
	last string // the last string returned: a stream often repeats it
}

// get returns b as a string shared with earlier equal ones.
func (in *interner) get(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case string(b) == in.last:
		return in.last
	}
	s, ok := in.m[string(b)]
	if !ok {
		if in.m == nil || len(in.m) >= maxInterned {
			in.m = make(map[string]string)
		}
		s = string(b)
		in.m[s] = s
	}
	in.last = s
	return s
}
