// Package broker is the eventbus broker that the agent embeds, or that
// `eventbus broker` runs: it accepts connections on listeners it is given
// ([Broker.Serve]), admits each peer by its kernel-verified identity and
// the access policy (package acl), routes every publish to the matching
// subscribers through bounded per-connection queues, records correlated
// messages (package correlation) and answers queries and statistics.
//
// The client library (package eventbus) does not import this package: it
// reaches an embedded broker through [Broker.InProcessConn], which
// eventbus.InProcess takes.
//
//	b, err := broker.New(broker.Config{})
//	if err != nil { ... }
//	go b.ListenAndServe() // the default socket; or b.Serve(ln)
//	defer b.Shutdown(ctx)
//	agent, err := eventbus.Dial(ctx, "", eventbus.InProcess(b))
package broker
