package eventbus_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/correlation"
)

// The agent hands a task to the collectors and waits for their results:
// each collector answers under the task's correlation and marks its
// result final, and the broker's tracker returns what was collected.
func Example_waitForResults() {
	b, err := broker.New(broker.Config{Policy: acl.Open()})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, name := range []string{"procmond", "netmond"} {
		collector, err := eventbus.Dial(ctx, "", eventbus.InProcess(b), eventbus.WithName(name))
		if err != nil {
			panic(err)
		}
		defer collector.Close()
		tasks, err := collector.Subscribe(ctx, "control.collector.task.process")
		if err != nil {
			panic(err)
		}
		go func() { // ends when Close closes tasks.C
			for m := range tasks.C {
				collector.Publish(ctx, "events.process.batch", []byte(name+": 42 processes"),
					eventbus.WithCorrelation(*m.Correlation()), eventbus.WithFinal())
			}
		}()
	}

	agent, err := eventbus.Dial(ctx, "", eventbus.InProcess(b), eventbus.WithName("agent"))
	if err != nil {
		panic(err)
	}
	defer agent.Close()
	task := correlation.New(correlation.WithStage("enumeration"), correlation.WithSource("agent"))
	if err := agent.Publish(ctx, "control.collector.task.process", []byte("enumerate"), eventbus.WithCorrelation(task)); err != nil {
		panic(err)
	}

	// Across processes, correlation.FinalPublishers(2) waits for two
	// collectors. In-process clients are all the broker's own process, one
	// publisher to the tracker, so here: the task and two results.
	events, err := b.Tracker().Wait(ctx, task.CorrelationID, correlation.EventCount(3))
	if err != nil {
		panic(err)
	}
	var results []string
	for _, e := range events {
		if e.Final {
			results = append(results, string(e.Payload))
		}
	}
	slices.Sort(results) // the collectors answer in either order
	for _, r := range results {
		fmt.Println(r)
	}
	// Output:
	// netmond: 42 processes
	// procmond: 42 processes
}

// A multi-stage workflow: each stage is a child correlation of the one
// that led to it, under the same root, so the tracker can show the whole
// investigation as one timeline.
func ExampleClient_Publish_correlation() {
	b, err := broker.New(broker.Config{Policy: acl.Open()})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agent, err := eventbus.Dial(ctx, "", eventbus.InProcess(b), eventbus.WithName("agent"))
	if err != nil {
		panic(err)
	}
	defer agent.Close()

	enumeration := correlation.New(correlation.WithStage("enumeration"), correlation.WithSource("agent"),
		correlation.WithTag("investigation_id", "INC-12345"))
	integrity := enumeration.NewChild(correlation.WithStage("integrity")) // same root and tags
	network := integrity.NewChild(correlation.WithStage("network_analysis"))

	publish := func(topic string, m correlation.Metadata, opts ...eventbus.PublishOption) {
		if err := agent.Publish(ctx, topic, nil, append(opts, eventbus.WithCorrelation(m))...); err != nil {
			panic(err)
		}
	}
	publish("control.collector.task.process", enumeration)
	publish("control.collector.task.process", enumeration, eventbus.WithFinal()) // sequence 2
	publish("control.collector.task.filesystem", integrity)
	publish("control.collector.task.network", network)
	if err := agent.Flush(ctx); err != nil { // the broker has recorded them all
		panic(err)
	}

	for _, e := range b.Tracker().Timeline(enumeration.RootID) {
		fmt.Printf("depth %d  %-16s seq %d  final %-5v  %s\n", e.Depth, e.Stage, e.Sequence, e.Final, e.Topic)
	}
	// Output:
	// depth 0  enumeration      seq 1  final false  control.collector.task.process
	// depth 0  enumeration      seq 2  final true   control.collector.task.process
	// depth 1  integrity        seq 1  final false  control.collector.task.filesystem
	// depth 2  network_analysis seq 1  final false  control.collector.task.network
}
