package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const directSupported = true

// directWrite makes one non-blocking write of b to the socket: it never
// waits for the socket to become writable. A full socket buffer writes
// nothing (n 0, err EAGAIN).
//
// The write is made inside RawConn.Control, which holds the descriptor open
// but, unlike RawConn.Write, does not look at the write deadline: a deadline
// an earlier blocking write set, and which has passed since, would fail the
// write without trying it. The socket is non-blocking (Go opens it so), and
// the connection's writer role (c.writing) keeps any other write out.
func directWrite(raw syscall.RawConn, b []byte) (n int, err error) {
	cerr := raw.Control(func(fd uintptr) {
		for {
			n, err = unix.Write(int(fd), b)
			if err != unix.EINTR {
				break
			}
		}
	})
	if n < 0 {
		n = 0
	}
	if err == nil {
		err = cerr
	}
	return n, err
}

// directWritev is directWrite for several buffers, with one writev.
func directWritev(raw syscall.RawConn, bufs [][]byte) (n int, err error) {
	if len(bufs) == 1 {
		return directWrite(raw, bufs[0])
	}
	cerr := raw.Control(func(fd uintptr) {
		for {
			n, err = unix.Writev(int(fd), bufs)
			if err != unix.EINTR {
				break
			}
		}
	})
	if n < 0 {
		n = 0
	}
	if err == nil {
		err = cerr
	}
	return n, err
}
