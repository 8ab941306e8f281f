package eventbus

// maxInterned bounds an interner; when full it starts over, so ids of
// finished workflows do not crowd out the stages, tags and topics that
// recur.
const maxInterned = 4096

// interner shares equal strings decoded from one connection: topics,
// stages, tags and the ids of a workflow repeat from message to message,
// so most decodes need no new string. Owned by one goroutine.
type interner map[string]string

// get returns b as a string; a nil interner just converts.
func (in interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if in == nil {
		return string(b)
	}
	if s, ok := in[string(b)]; ok {
		return s
	}
	if len(in) >= maxInterned {
		clear(in)
	}
	s := string(b)
	in[s] = s
	return s
}
