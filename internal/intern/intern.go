// Package intern shares equal strings decoded from one connection: topics,
// stages, tags and the ids of a workflow repeat from message to message,
// so most decodes need no new string.
package intern

// maxStrings bounds a Table; when full it starts over, so ids of finished
// workflows do not crowd out the stages, tags and topics that recur.
const maxStrings = 4096

// Table is a bounded set of shared strings. Owned by one goroutine; the
// zero value is ready.
type Table struct {
	m    map[string]string
	last string // the last string returned: a stream often repeats it
}

// Get returns b as a string shared with earlier equal ones.
func (t *Table) Get(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case string(b) == t.last:
		return t.last
	}
	s, ok := t.m[string(b)]
	if !ok {
		if t.m == nil || len(t.m) >= maxStrings {
			t.m = make(map[string]string)
		}
		s = string(b)
		t.m[s] = s
	}
	t.last = s
	return s
}
