//go:build !linux

package transport

import "time"

// LastHeard returns when the peer was last heard from: the later of
// [Conn.LastSeen] and, on Linux, the last time data from the peer reached the
// TCP socket, read or not (the kernel's tcpi_last_data_recv, to its clock tick
// of a few milliseconds). While the reader is paused (see [Conn.ReadPaused])
// what the peer sends, its pongs included, waits unread in the socket's
// receive buffer: LastSeen stands still, LastHeard does not. TCP
// acknowledgements and keepalives carry no data and do not count. A peer that
// has filled the receive buffer cannot send anything more, so it is not heard
// from until the reader reads again.
//
// Where the kernel does not report it (other systems, as here; a socket that
// is not TCP, after looking through TLS and other wrappers with a NetConn
// method; a kernel older than Linux 4.1 or an emulated one that leaves the
// field empty), LastHeard is LastSeen. On Linux it costs a system call.
func (c *Conn) LastHeard() time.Time { return c.LastSeen() }
