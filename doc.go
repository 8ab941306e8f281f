// Package eventbus is the client library of a local publish/subscribe bus
// for a host security-monitoring agent and its collector processes: what a
// collector imports to publish events and receive tasks.
//
// A [Client] talks to a broker (package broker) over a Unix socket, a
// named pipe on Windows, or in process ([InProcess]). Topics are
// dot-separated with + and # wildcards (package topic). Every delivered
// [Message] carries the publisher's pid, uid and component as the broker
// verified them from the kernel and its access policy, and optional
// correlation metadata (package correlation) that the broker records for
// forensic queries ([Client.History], [Client.Timeline], [Client.Wait]).
// Delivery is at most once, in publish order per publisher, through
// bounded per-subscriber queues: a slow subscriber loses messages (and is
// told how many, in [Message.Missed]) rather than slowing anyone else.
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
// The agent embedding a broker talks to it in process:
//
//	b, err := broker.New(broker.Config{})
//	go b.ListenAndServe() // the default socket; or b.Serve(ln)
//	defer b.Shutdown(ctx)
//	agent, err := eventbus.Dial(ctx, "", eventbus.InProcess(b))
//
// docs/PROTOCOL.md describes the wire protocol, docs/ARCHITECTURE.md the
// packages, goroutines, locks and data flow, and docs/SECURITY.md the
// access model.
package eventbus
