//go:build !linux

package transport

import (
	"errors"
)

// Idle readers park only on Linux; elsewhere every connection keeps its
// reader goroutine (see poll_linux.go).
type poller struct{}

func thePollerFor() *poller { return nil }

var errNotArmed = errors.New("transport: socket not watched")

func (*poller) arm(*Conn) error { return errNotArmed }
func (*poller) forget(*Conn)    {}
