package wire

// Regenerating needs protoc (Debian: protobuf-compiler), protoc-gen-go and
// protoc-gen-go-vtproto on PATH; scripts/gen-proto.sh installs the plugins
// at the versions go.mod pins.
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size eventbus.proto
