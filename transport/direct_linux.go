package transport

import (
	"sync"
	"syscall"
	"unsafe"

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
	o := rawWrites.Get().(*rawWrite)
	o.one = b
	return o.run(raw)
}

// directWritev is directWrite for several buffers, with one writev.
func directWritev(raw syscall.RawConn, bufs [][]byte) (n int, err error) {
	if len(bufs) == 1 {
		return directWrite(raw, bufs[0])
	}
	o := rawWrites.Get().(*rawWrite)
	o.bufs = bufs
	return o.run(raw)
}

// run makes o's write on raw's descriptor and puts o back in the pool.
func (o *rawWrite) run(raw syscall.RawConn) (n int, err error) {
	cerr := raw.Control(o.do)
	n, err = o.n, o.err
	clear(o.iov)
	o.iov, o.one, o.bufs, o.n, o.err = o.iov[:0], nil, nil, 0, nil
	rawWrites.Put(o)
	if n < 0 {
		n = 0
	}
	if err == nil {
		err = cerr
	}
	return n, err
}

// rawWrite is one direct write: pooled with its iovec array and its bound
// callback, so a write allocates nothing (a closure for RawConn.Control and
// unix.Writev's iovecs did, per write).
type rawWrite struct {
	one  []byte   // the one buffer, or
	bufs [][]byte // several
	iov  []unix.Iovec
	n    int
	err  error
	do   func(fd uintptr) // o.write, bound once
}

var rawWrites = sync.Pool{New: func() any {
	o := new(rawWrite)
	o.do = o.write
	return o
}}

func (o *rawWrite) write(fd uintptr) {
	if o.one != nil {
		for {
			o.n, o.err = unix.Write(int(fd), o.one)
			if o.err != unix.EINTR {
				return
			}
		}
	}
	for _, b := range o.bufs {
		if len(b) > 0 {
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			o.iov = append(o.iov, v)
		}
	}
	if len(o.iov) == 0 {
		return
	}
	for {
		r, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&o.iov[0])), uintptr(len(o.iov)))
		if e == unix.EINTR {
			continue
		}
		o.n = int(r)
		if e != 0 {
			o.n, o.err = 0, e
		}
		return
	}
}
