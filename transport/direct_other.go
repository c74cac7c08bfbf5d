//go:build !linux

package transport

import (
	"errors"
	"syscall"
)

// Direct writes are made on Linux only; elsewhere every send goes through
// the writer goroutine.
const directSupported = false

func directWrite(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("transport: no direct writes on this system")
}

func directWritev(syscall.RawConn, [][]byte) (int, error) {
	return 0, errors.New("transport: no direct writes on this system")
}
