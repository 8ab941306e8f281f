package intern

import "testing"

func TestTableShares(t *testing.T) {
	var tab Table
	if got := tab.Get(nil); got != "" {
		t.Errorf("Get(nil) = %q; want \"\"", got)
	}
	a := tab.Get([]byte("events.process.lifecycle"))
	tab.Get([]byte("other"))
	b := tab.Get([]byte("events.process.lifecycle"))
	if a != b || a != "events.process.lifecycle" {
		t.Fatalf("Get = %q, %q; want equal strings", a, b)
	}
	if allocs := testing.AllocsPerRun(100, func() { tab.Get([]byte("other")) }); allocs != 0 {
		t.Errorf("Get of a known string allocates %v times; want 0", allocs)
	}
}

func TestTableBounded(t *testing.T) {
	var tab Table
	for i := range 3 * maxStrings {
		tab.Get([]byte{byte(i), byte(i >> 8), 'x'})
		if len(tab.m) > maxStrings {
			t.Fatalf("after %d strings the table holds %d; limit %d", i+1, len(tab.m), maxStrings)
		}
	}
}
