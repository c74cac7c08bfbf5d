package transport

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
// Where the kernel does not report it (other systems; a socket that is not
// TCP, after looking through TLS and other wrappers with a NetConn method; a
// kernel older than Linux 4.1 or an emulated one that leaves the field empty),
// LastHeard is LastSeen. On Linux it costs a system call.
func (c *Conn) LastHeard() time.Time {
	seen := c.LastSeen()
	if at, ok := lastDataRecv(c.nc); ok && at.After(seen) {
		return at
	}
	return seen
}

// lastDataRecv returns when data from the peer last reached nc's TCP socket,
// as the kernel reports it, or false where it does not.
func lastDataRecv(nc net.Conn) (time.Time, bool) {
	sc, ok := socketOf(nc)
	if !ok {
		return time.Time{}, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return time.Time{}, false
	}
	var (
		info    *unix.TCPInfo
		infoErr error
	)
	if err := raw.Control(func(fd uintptr) {
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || infoErr != nil {
		return time.Time{}, false
	}
	return lastDataRecvFrom(info, time.Now())
}

// lastDataRecvFrom reads the time of the last data received out of a
// tcp_info taken at now.
func lastDataRecvFrom(info *unix.TCPInfo, now time.Time) (time.Time, bool) {
	// The peer sent at least its half of the handshake, so a kernel that
	// counts received bytes (Linux 4.1 and later) reports some. Zero means a
	// shorter or emulated tcp_info (gVisor returns one that is all zeros),
	// whose last_data_recv of 0 would read as "just now" for ever.
	if info.Bytes_received == 0 {
		return time.Time{}, false
	}
	return now.Add(-time.Duration(info.Last_data_recv) * time.Millisecond), true
}

// socketOf finds the socket under nc, looking through wrappers such as
// *tls.Conn that expose the connection they wrap with a NetConn method.
func socketOf(nc net.Conn) (syscall.Conn, bool) {
	for range 8 { // a bound, in case a wrapper returns itself
		switch v := nc.(type) {
		case syscall.Conn:
			return v, true
		case interface{ NetConn() net.Conn }:
			nc = v.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}
