package correlation_test

import (
	"context"
	"fmt"
	"time"

	"daemoneye.dev/eventbus/correlation"
)

// A two-stage workflow: the agent starts an enumeration, a collector
// answers with a final result, and an integrity check follows as a child.
func Example() {
	tr, err := correlation.NewTracker(correlation.Config{})
	if err != nil {
		panic(err)
	}
	enum := correlation.New(correlation.WithStage("enumeration"), correlation.WithSource("agent"),
		correlation.WithTag("investigation_id", "INC-12345"))
	integrity := enum.NewChild(correlation.WithStage("integrity"))

	publish := func(topic, component string, pid int, m correlation.Metadata, final bool) {
		err := tr.Record(correlation.Event{Topic: topic, PublisherPID: pid, PublisherComponent: component,
			Metadata: m, Final: final})
		if err != nil {
			panic(err)
		}
	}
	publish("control.collector.task.process", "agent", 1, enum, false)
	publish("events.process.batch", "procmond", 42, enum, true)

	// Wait for one collector's final result of the enumeration.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	results, err := tr.Wait(ctx, enum.CorrelationID, correlation.FinalPublishers(1))
	fmt.Println("enumeration results:", len(results), err)

	publish("control.collector.task.process", "agent", 1, integrity, false)

	for _, e := range tr.Timeline(enum.RootID) {
		fmt.Printf("depth %d  %-12s %-9s %s\n", e.Depth, e.Stage, e.PublisherComponent, e.Topic)
	}
	st, _ := tr.Workflow(enum.RootID)
	for _, s := range st.Stages {
		fmt.Printf("stage %s: %d events, completed %v\n", s.Name, s.Events, s.Completed)
	}
	fmt.Println("tagged:", len(tr.ByTags(map[string]string{"investigation_id": "INC-12345"}, correlation.Query{})))

	// Output:
	// enumeration results: 2 <nil>
	// depth 0  enumeration  agent     control.collector.task.process
	// depth 0  enumeration  procmond  events.process.batch
	// depth 1  integrity    agent     control.collector.task.process
	// stage enumeration: 2 events, completed true
	// stage integrity: 1 events, completed false
	// tagged: 3
}

// A compiled filter, as the broker applies it per subscriber.
func ExampleFilter_Compile() {
	f := correlation.Filter{
		Stages:       []string{"integrity", "network_analysis"},
		RequiredTags: map[string]string{"investigation_id": "INC-12345"},
	}
	c, err := f.Compile()
	if err != nil {
		panic(err)
	}
	m := correlation.New(correlation.WithStage("integrity"), correlation.WithTag("investigation_id", "INC-12345"))
	fmt.Println(c.Match(&m), c.Match(nil))
	// Output: true false
}
