package topic

import (
	"errors"
	"testing"
)

func FuzzValidate(f *testing.F) {
	for _, tt := range topicTests {
		f.Add(tt.topic)
	}
	for _, tt := range patternTests {
		f.Add(tt.pattern)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Validate(s)
		if errB := ValidateBytes([]byte(s)); !sameError(err, errB) {
			t.Fatalf("Validate(%q) = %v but ValidateBytes = %v", s, err, errB)
		}
		perr := ValidatePattern(s)
		switch {
		case err != nil && !errors.Is(err, ErrInvalidTopic):
			t.Fatalf("Validate(%q) = %v; want ErrInvalidTopic", s, err)
		case perr != nil && !errors.Is(perr, ErrInvalidPattern):
			t.Fatalf("ValidatePattern(%q) = %v; want ErrInvalidPattern", s, perr)
		case err == nil && perr != nil:
			t.Fatalf("ValidatePattern(%q) = %v; want nil for a valid topic", s, perr)
		case perr == nil && err != nil && !IsWildcard(s):
			t.Fatalf("Validate(%q) = %v; want nil for a pattern without wildcards", s, err)
		case err == nil && !Match(s, s):
			t.Fatalf("Match(%q, %q) = false; want true", s, s)
		}
	})
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// FuzzMatch checks Index, with the cache on and off, against Match. Values 1
// and 2 sit under one pattern each and value 3 under both, so 3 exercises
// deduplication. Inputs are also tried squashed onto a small alphabet, which
// makes valid and matching pairs common.
func FuzzMatch(f *testing.F) {
	for _, tt := range matchTests {
		f.Add(tt.pattern, "#", tt.topic)
		f.Add(tt.pattern, tt.pattern, tt.topic)
	}
	f.Fuzz(func(t *testing.T, p1, p2, topic string) {
		fuzzMatch(t, p1, p2, topic)
		fuzzMatch(t, squash(p1), squash(p2), squash(topic))
	})
}

func fuzzMatch(t *testing.T, p1, p2, topic string) {
	if Validate(topic) != nil {
		for _, p := range []string{p1, p2} {
			if Match(p, topic) {
				t.Fatalf("Match(%q, %q) = true for an invalid topic", p, topic)
			}
		}
		return
	}
	m1, m2 := Match(p1, topic), Match(p2, topic)
	want := wantValues(m1, m2, m1 || m2)
	// After Remove(p1, 3), 3 stays only under a distinct p2.
	wantAfter := wantValues(m1, m2, m2 && p1 != p2)
	for _, size := range []int{DefaultCacheSize, 0} {
		ix := NewIndex[int](size)
		ix.Match(topic) // prime the cache so inserts must update it
		insert := func(p string, v int) {
			if err := ix.Insert(p, v); (err == nil) != (ValidatePattern(p) == nil) {
				t.Fatalf("Insert(%q) = %v; ValidatePattern disagrees", p, err)
			}
		}
		insert(p1, 1)
		insert(p2, 2)
		insert(p1, 3)
		insert(p2, 3)
		checkMatch(t, ix, topic, want)
		ix.Remove(p1, 3)
		checkMatch(t, ix, topic, wantAfter)
	}
}

// wantValues lists the values 1, 2 and 3 whose flags are set.
func wantValues(flags ...bool) []int {
	var vs []int
	for i, ok := range flags {
		if ok {
			vs = append(vs, i+1)
		}
	}
	return vs
}

// squash maps every byte onto characters that matter to topics.
func squash(s string) string {
	const alphabet = "ab..+#$c"
	b := []byte(s)
	for i, c := range b {
		b[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(b)
}
