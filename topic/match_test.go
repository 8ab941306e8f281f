package topic

import "testing"

// matchTests holds every example of docs/TOPICS.md §1 and the '$' rules. They drive
// Match, the Index tests and the FuzzMatch seeds.
var matchTests = []struct {
	pattern, topic string
	want           bool
}{
	{"events.process.#", "events.process", true},
	{"events.process.#", "events.process.lifecycle", true},
	{"events.process.#", "events.process.a.b", true},
	{"events.process.#", "events.network", false},
	{"events.process.#", "events", false},
	{"events.+.lifecycle", "events.network.lifecycle", true},
	{"events.+.lifecycle", "events.process.lifecycle", true},
	{"events.+.lifecycle", "events.lifecycle", false},
	{"events.+.lifecycle", "events.a.b.lifecycle", false},
	{"events.+.lifecycle", "events.network.metadata", false},
	{"a.+.#", "a.b", true},
	{"a.+.#", "a.b.c", true},
	{"a.+.#", "a.b.c.d", true},
	{"a.+.#", "a", false},
	{"#", "a", true},
	{"#", "events.process.lifecycle", true},
	{"+", "a", true},
	{"+", "a.b", false},
	{"+.+", "a.b", true},
	{"+.b", "a.b", true},
	{"a.b", "a.b", true},
	{"a.b", "a.bc", false},
	{"a.b", "a.b.c", false},
	{"a.b.c", "a.b", false},
	{"a.b.#", "a.bc", false},
	{"ab", "a", false},
	// '$' topics are the broker's; leading wildcards never reach them.
	{"#", "$sys.stats", false},
	{"#", "$sys", false},
	{"+", "$sys", false},
	{"+.stats", "$sys.stats", false},
	{"+.#", "$sys.stats", false},
	{"$sys.#", "$sys.stats", true},
	{"$sys.#", "$sys", true},
	{"$sys.+", "$sys.stats", true},
	{"$sys.stats", "$sys.stats", true},
	{"$sys.#", "sys.stats", false},
	{"sys.#", "$sys.stats", false},
	// Invalid inputs never match.
	{"a.#.b", "a.x.b", false},
	{"a*", "a*", false},
	{"ev+", "ev+", false},
	{"#", "", false},
	{"#", "A", false},
	{"#", "a..b", false},
	{"a.b", "a.+", false},
	{"#", "#", false},
	{"", "", false},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchTests {
		t.Run(tt.pattern+" "+tt.topic, func(t *testing.T) {
			if got := Match(tt.pattern, tt.topic); got != tt.want {
				t.Errorf("Match(%q, %q) = %v; want %v", tt.pattern, tt.topic, got, tt.want)
			}
		})
	}
}
