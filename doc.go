// Package eventbus is a local publish/subscribe bus for a host
// security-monitoring agent and its collector processes (SPEC.md).
//
// A [Broker] routes messages between clients connected over a Unix socket
// (a named pipe on Windows) and, through [Broker.Client], within the
// embedding process. Topics are dot-separated with + and # wildcards
// (package topic). Every message carries the publisher's pid, uid and
// component as the broker verified them from the kernel and its access
// policy (package acl), and optional correlation metadata that the broker
// records for forensic queries and workflow tracking (package
// correlation). Delivery is at most once, in publish order per publisher,
// through bounded per-subscriber queues: a slow subscriber loses messages
// (and is told how many) rather than slowing anyone else.
//
// Embedding a broker:
//
//	b, err := eventbus.New(eventbus.Config{})
//	if err != nil { ... }
//	go b.ListenAndServe() // the default socket; or b.Serve(ln)
//	defer b.Shutdown(ctx)
//	agent, err := b.Client(ctx) // in process: the agent
//
// A collector:
//
//	c, err := eventbus.Dial(ctx, "", eventbus.WithComponent("procmond"))
//	sub, err := c.Subscribe(ctx, "control.collector.task.process.#")
//	for m := range sub.C {
//		if m.Correlation() == nil {
//			continue // a task without a workflow to answer in
//		}
//		c.Publish(ctx, "events.process.batch", result, eventbus.WithCorrelation(*m.Correlation()), eventbus.WithFinal())
//	}
//
// docs/PROTOCOL.md describes the wire protocol, docs/ARCHITECTURE.md the
// goroutines, locks and data flow, and docs/SECURITY.md the access model.
package eventbus
