//go:build !linux

package transport

import (
	"errors"
	"net"
	"syscall"
)

// Idle readers park only on Linux; elsewhere every connection keeps its
// reader goroutine (see poll_linux.go).
type poller struct{}

func pollerFor(net.Conn) (*poller, syscall.RawConn) { return nil, nil }

var errNotArmed = errors.New("transport: socket not watched")

func (*poller) arm(*Conn) error { return errNotArmed }
func (*poller) forget(*Conn)    {}
