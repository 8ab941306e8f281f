package main

import (
	"strings"
	"testing"
)

// FuzzParseTags: --tag parsing never panics, and what it accepts is one
// non-empty key per flag, each with the text after its first '='.
func FuzzParseTags(f *testing.F) {
	f.Add("investigation_id=INC-12345\nhost=server-01")
	f.Add("k=")
	f.Add("=v")
	f.Add("k=v=w\nk=x")
	f.Fuzz(func(t *testing.T, flags string) {
		kvs := strings.Split(flags, "\n")
		tags, err := parseTags(kvs)
		if err != nil {
			return
		}
		if len(tags) != len(kvs) {
			t.Fatalf("parseTags(%q) = %d tags for %d flags", kvs, len(tags), len(kvs))
		}
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			if k == "" || tags[k] != v {
				t.Fatalf("parseTags(%q)[%q] = %q; want %q", kvs, k, tags[k], v)
			}
		}
	})
}
