// Package wire holds the protobuf messages that cluster rooms exchange
// between nodes. rooms.pb.go is generated from rooms.proto; see that file for
// the command.
package wire

//go:generate protoc --go_out=. --go_opt=paths=source_relative rooms.proto users.proto topics.proto
