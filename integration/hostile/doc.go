// Package hostile runs attacks against a real broker process and checks
// that the broker keeps the bounds of docs/SECURITY.md §7.
//
// Each test starts `eventbus broker --config FILE` (the binary
// proctest.Binary builds, with the race detector when the tests have it)
// on a socket in a private temporary directory, with a YAML config the
// test writes, and attacks it from goroutines of the test process: clients
// of package eventbus, and raw peers that speak the wire protocol
// directly (testutil.DialRaw). The broker's own memory is read from its
// statistics (stats.Snapshot.RSSBytes) through a registered client, whose
// statistics are complete.
//
// The tests synchronise on events (a reply, a line of the broker's
// output, a closed connection), never on sleeps, and assert bounds on
// memory, sizes and counts, never on wall-clock speed. Under the race
// detector the attacks that fill the broker's memory are smaller, since
// its shadow memory multiplies the broker's resident size; every bound is
// asserted in both runs. BenchmarkRoutingIsolation measures what
// unreadable subscriptions cost a publisher.
//
// The suite runs on Linux, where the broker reports its resident set
// size; this file lets the package build everywhere.
package hostile
