#!/usr/bin/env bash
# Regenerates wire/*.pb.go from wire/eventbus.proto.
# Needs protoc (Debian: apt-get install -y protobuf-compiler). The plugins are
# installed into .bin/ at pinned versions: protoc-gen-go v1.34.2 because later
# releases emit `import "unsafe"` and this project keeps its code free of it;
# protoc-gen-go-vtproto at the version go.mod requires.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.bin"
GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.34.2
GOBIN="$bin" go install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto
PATH="$bin:$PATH" go generate ./wire/
