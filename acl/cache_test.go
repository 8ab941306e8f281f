package acl

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestCacheMatchesPolicy(t *testing.T) {
	p := Default(0)
	for _, id := range []Identity{anonymous, procmond, netmond, agent} {
		c := NewCache(p, id, 0)
		for round := range 2 { // the second round hits
			for _, tp := range specTopics {
				for _, a := range []Action{Publish, Subscribe} {
					want := p.Check(id, a, tp)
					for name, got := range map[string]error{"Check": c.Check(a, tp), "CheckBytes": c.CheckBytes(a, []byte(tp))} {
						if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
							t.Errorf("round %d: %s(%v, %s) for %s = %v; want %v", round, name, a, tp, id, got, want)
						}
					}
				}
			}
		}
		if c.Identity() != id {
			t.Errorf("Identity() = %v; want %v", c.Identity(), id)
		}
	}
}

func TestCacheHitAllocationFree(t *testing.T) {
	c := NewCache(Default(0), procmond, 0)
	tests := []struct {
		action Action
		topic  []byte
		denied bool
	}{
		{Publish, []byte("events.process.lifecycle"), false},
		{Publish, []byte("control.agent.policy"), true},
		{Subscribe, []byte("control.collector.config"), false},
		{Subscribe, []byte("events.network.lifecycle"), true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%s", tt.action, tt.topic), func(t *testing.T) {
			first := c.CheckBytes(tt.action, tt.topic) // the miss
			if (first != nil) != tt.denied {
				t.Fatalf("CheckBytes = %v; want denied %v", first, tt.denied)
			}
			var err error
			allocs := testing.AllocsPerRun(100, func() { err = c.CheckBytes(tt.action, tt.topic) })
			if allocs != 0 {
				t.Errorf("CheckBytes hit: %v allocs; want 0", allocs)
			}
			if err != first {
				t.Errorf("hit returned %v; want the cached %v", err, first)
			}
		})
	}
}

func TestCacheBounded(t *testing.T) {
	const size = 64
	c := NewCache(Default(0), agent, size)
	for i := range 1000 {
		if err := c.Check(Publish, fmt.Sprintf("control.collector.task.process.%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := c.Check(Subscribe, fmt.Sprintf("events.x%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n > 2*size {
		t.Errorf("Len() = %d; want at most %d", n, 2*size)
	}
	for range 10 {
		c.Check(Publish, "bad..topic")
	}
	if err := c.Check(Publish, "bad..topic"); !errors.Is(err, ErrDenied) {
		t.Errorf("invalid topic = %v; want ErrDenied", err)
	}
	if err := c.Check(Action(9), "events.x"); !errors.Is(err, ErrDenied) {
		t.Errorf("unknown action = %v; want ErrDenied", err)
	}
}

func TestCacheInvalidNotCached(t *testing.T) {
	c := NewCache(Default(0), agent, 0)
	c.Check(Publish, "Bad.Topic")
	c.CheckBytes(Subscribe, []byte("a..b"))
	if n := c.Len(); n != 0 {
		t.Errorf("Len() = %d after invalid topics; want 0", n)
	}
}

func TestCacheConcurrent(t *testing.T) {
	p := Default(0)
	c := NewCache(p, netmond, 16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				tp := specTopics[(i+g)%len(specTopics)]
				if i%7 == 0 {
					tp = fmt.Sprintf("events.network.t%d", i)
				}
				a := Action(i % 2)
				if got, want := c.Check(a, tp), p.Check(netmond, a, tp); (got == nil) != (want == nil) {
					t.Errorf("Check(%v, %s) = %v; want %v", a, tp, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
