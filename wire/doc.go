// Package wire is eventbus's wire protocol: the protobuf schema
// (eventbus.proto, with generated code), the preamble and version
// handshake, length-prefixed frames, and the broker's allocation-free
// paths: ScanPublish checks a PUBLISH without decoding it, AppendDeliver
// forwards the publisher's bytes with the broker's verified fields
// appended, and DecodeDeliver decodes a DELIVER into a view. The protocol
// is specified in docs/PROTOCOL.md.
package wire
