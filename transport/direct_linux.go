package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const directSupported = true

// directWrite makes one non-blocking write of b to the socket: it never
// waits for the socket to become writable. A full socket buffer writes
// nothing (n 0, err EAGAIN).
func directWrite(raw syscall.RawConn, b []byte) (n int, err error) {
	cerr := raw.Write(func(fd uintptr) bool {
		for {
			n, err = unix.Write(int(fd), b)
			if err != unix.EINTR {
				break
			}
		}
		return true // done either way: never wait for writability here
	})
	if n < 0 {
		n = 0
	}
	if err == nil {
		err = cerr
	}
	return n, err
}
