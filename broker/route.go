package broker

import (
	"sync"
	"sync/atomic"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/topic"
)

// routes is the broker's subscription index, split so that a publish
// never pays for subscriptions that cannot read its topic
// (docs/SECURITY.md §7). A subscription whose every pattern matches only
// topics its subscriber may read goes into the main index, and every
// match there receives the message. One whose patterns may also match
// topics it may not read (a `#` of an anonymous peer) goes into the index
// of its access class: a publish visits a class's index only if the class
// may read the topic, one cached decision per class, so unreadable
// subscriptions cost nothing however many there are.
type routes struct {
	main *topic.Index[*subscription]

	mu      sync.Mutex                    // guards byClass and the counts of its routes
	byClass map[acl.Class]*classRoute     // classes with filtered subscriptions
	classes atomic.Pointer[[]*classRoute] // byClass's values, for route to read without the lock
	policy  acl.Authorizer
}

// classRoute is one access class's filtered subscriptions.
type classRoute struct {
	class  acl.Class
	access *acl.Cache // the class's Subscribe decisions
	index  *topic.Index[*subscription]
	subs   int // subscriptions in index; guarded by routes.mu
}

func newRoutes(policy acl.Authorizer) *routes {
	r := &routes{main: topic.NewIndex[*subscription](topic.DefaultCacheSize), byClass: make(map[acl.Class]*classRoute), policy: policy}
	r.classes.Store(new([]*classRoute))
	return r
}

// add indexes s under its patterns, which checkPatterns validated.
func (r *routes) add(s *subscription) {
	idx := r.main
	if s.filtered {
		r.mu.Lock()
		cr := r.byClass[s.class]
		if cr == nil {
			cr = &classRoute{class: s.class, access: acl.NewCache(r.policy, s.class.Identity(), 0),
				index: topic.NewIndex[*subscription](topic.DefaultCacheSize)}
			r.byClass[s.class] = cr
			r.publishClassesLocked()
		}
		cr.subs++
		idx = cr.index
		r.mu.Unlock()
	}
	for _, p := range s.patterns {
		idx.Insert(p, s) // cannot fail: the patterns are valid
	}
}

// remove takes s out of the index add put it in.
func (r *routes) remove(s *subscription) {
	if !s.filtered {
		for _, p := range s.patterns {
			r.main.Remove(p, s)
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cr := r.byClass[s.class]
	for _, p := range s.patterns {
		cr.index.Remove(p, s)
	}
	if cr.subs--; cr.subs == 0 {
		delete(r.byClass, s.class)
		r.publishClassesLocked()
	}
}

func (r *routes) publishClassesLocked() {
	cs := make([]*classRoute, 0, len(r.byClass))
	for _, cr := range r.byClass {
		cs = append(cs, cr)
	}
	r.classes.Store(&cs)
}
