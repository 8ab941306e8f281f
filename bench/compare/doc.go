// Package compare measures eventbus beside NATS on the same machine, in
// the same run: request/reply round trips and queue-group dispatch. It is
// a module of its own so that nats-server stays out of the product's.
//
//	cd bench/compare && go test -run X -bench . -benchtime 20000x -count 5
package compare
