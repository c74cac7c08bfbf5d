package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// wsConn is a minimal RFC 6455 client connection made for load: the
// handshake is written and parsed by hand so that the bufio.Reader that read
// the 101 response keeps reading frames (nothing the server sends right
// after the handshake is lost), and frames are parsed in place with Peek, so
// receiving a message allocates nothing. One goroutine (readLoop) reads;
// writes take wmu, because the reader answers pings.
type wsConn struct {
	nc      net.Conn
	br      *bufio.Reader
	deflate bool // permessage-deflate negotiated

	wmu  sync.Mutex
	wbuf []byte

	// Inflation of compressed frames (no context takeover: each message on
	// its own). Made on the first compressed frame.
	zbuf  []byte
	zsrc  inflateSrc
	zr    io.ReadCloser
	plain []byte

	// Counters owned by the reader.
	frames     int64 // data messages received
	compressed int64 // of which had RSV1 set
	closeCode  int   // close code received, 0 if none
	serverShut bool  // the server closed first (not an answer to our close)
	closing    atomic.Bool
	err        error // why readLoop ended

	// Owner-defined per-connection state (the scenario's receiver).
	rx *receiver
}

// dialOptions say how to open a connection.
type dialOptions struct {
	addr    string // host:port
	path    string // request target, e.g. /ws?room=r1
	src     net.IP // local address to bind, nil for any
	deflate bool   // offer permessage-deflate (no context takeover)
	bufSize int    // bufio.Reader size; frames up to this size are parsed in place
	timeout time.Duration
}

// deflateOffer is what gorilla's client offers: no context takeover either
// way, so every server compresses each message on its own and a shared
// compressed frame (wsactor, gorilla's PreparedMessage, uWS's shared
// compressor) is valid for every client.
const deflateOffer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

func dial(o dialOptions) (*wsConn, error) {
	d := net.Dialer{Timeout: o.timeout}
	if o.src != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.src}
	}
	nc, err := d.Dial("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	c, err := handshake(nc, o)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func handshake(nc net.Conn, o dialOptions) (*wsConn, error) {
	_ = nc.SetDeadline(time.Now().Add(o.timeout))
	var key [16]byte
	_, _ = crand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", o.path, o.addr, k)
	if o.deflate {
		req.WriteString("Sec-WebSocket-Extensions: " + deflateOffer + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(nc, req.String()); err != nil {
		return nil, err
	}
	size := o.bufSize
	if size < 256 {
		size = 256
	}
	br := bufio.NewReaderSize(nc, size)
	status, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return nil, fmt.Errorf("handshake: %s", strings.TrimSpace(status))
	}
	accept, ext := "", ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sec-websocket-accept":
			accept = value
		case "sec-websocket-extensions":
			ext += value + ","
		}
	}
	h := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if accept != base64.StdEncoding.EncodeToString(h[:]) {
		return nil, errors.New("handshake: bad Sec-WebSocket-Accept")
	}
	_ = nc.SetDeadline(time.Time{})
	return &wsConn{nc: nc, br: br, deflate: strings.Contains(ext, "permessage-deflate")}, nil
}

// send writes one masked text message.
func (c *wsConn) send(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wbuf[:0]
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := rand.Uint32()
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, p...)
	mask(key, b[start:])
	c.wbuf = b
	_, err := c.nc.Write(b)
	return err
}

func mask(key uint32, b []byte) {
	k64 := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}

// close sends a close frame (1000) and closes the socket.
func (c *wsConn) close() {
	c.closing.Store(true)
	// The deadline also ends a write in progress (a sender blocked on a
	// server that stopped reading), which holds wmu.
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.send(0x8, []byte{0x03, 0xe8})
	_ = c.nc.Close()
}

// readLoop reads frames until the connection ends, handing each data
// message to c.rx. prefix is how many leading bytes of a message the
// receiver looks at; verify inflates compressed messages fully (and checks
// their length against want, if not 0) instead of only their prefix.
func (c *wsConn) readLoop(prefix int, verify bool) {
	var hdr [8]byte
	var frag []byte // a fragmented message being reassembled (rare)
	fragOp, fragRSV := byte(0), false
	for {
		b0, err := c.br.ReadByte()
		if err != nil {
			c.err = err
			return
		}
		b1, err := c.br.ReadByte()
		if err != nil {
			c.err = err
			return
		}
		fin, rsv1, op := b0&0x80 != 0, b0&0x40 != 0, b0&0x0f
		if b1&0x80 != 0 {
			c.err = errors.New("masked frame from server")
			return
		}
		n := int(b1 & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
				c.err = err
				return
			}
			n = int(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
				c.err = err
				return
			}
			n = int(binary.BigEndian.Uint64(hdr[:8]))
		}
		switch {
		case op >= 0x8: // control
			p := make([]byte, n)
			if _, err := io.ReadFull(c.br, p); err != nil {
				c.err = err
				return
			}
			switch op {
			case 0x8:
				if len(p) >= 2 {
					c.closeCode = int(binary.BigEndian.Uint16(p))
				} else {
					c.closeCode = 1005
				}
				c.serverShut = !c.closing.Load()
				_ = c.send(0x8, p[:min(len(p), 2)])
				c.err = fmt.Errorf("closed by server with %d", c.closeCode)
				return
			case 0x9:
				_ = c.send(0xa, p)
			}
			continue
		case !fin || op == 0x0:
			if op != 0x0 {
				fragOp, fragRSV, frag = op, rsv1, frag[:0]
			}
			p := make([]byte, n)
			if _, err := io.ReadFull(c.br, p); err != nil {
				c.err = err
				return
			}
			frag = append(frag, p...)
			if !fin {
				continue
			}
			c.message(fragOp, fragRSV, frag, prefix, verify)
			continue
		}
		if n <= c.br.Size() {
			p, err := c.br.Peek(n)
			if err != nil {
				c.err = err
				return
			}
			c.message(op, rsv1, p, prefix, verify)
			_, _ = c.br.Discard(n)
			continue
		}
		if cap(c.plain) < n {
			c.plain = make([]byte, n)
		}
		p := c.plain[:n]
		if _, err := io.ReadFull(c.br, p); err != nil {
			c.err = err
			return
		}
		c.message(op, rsv1, p, prefix, verify)
	}
}

// message handles one complete data message p (compressed if rsv1; p is
// only valid during the call).
func (c *wsConn) message(op byte, rsv1 bool, p []byte, prefix int, verify bool) {
	c.frames++
	if rsv1 {
		c.compressed++
		out, err := c.inflate(p, prefix, verify)
		if err != nil {
			if c.rx != nil {
				c.rx.bad++
			}
			return
		}
		p = out
	}
	if c.rx != nil {
		c.rx.handle(c, p)
	}
}

// inflateSrc feeds a compressed message and the tail RFC 7692 says to
// append (plus an empty final block, so the reader ends) to flate.
type inflateSrc struct {
	p    []byte
	tail []byte
}

var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

func (s *inflateSrc) Read(b []byte) (int, error) {
	if len(s.p) > 0 {
		n := copy(b, s.p)
		s.p = s.p[n:]
		return n, nil
	}
	if len(s.tail) > 0 {
		n := copy(b, s.tail)
		s.tail = s.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

func (s *inflateSrc) ReadByte() (byte, error) {
	if len(s.p) > 0 {
		b := s.p[0]
		s.p = s.p[1:]
		return b, nil
	}
	if len(s.tail) > 0 {
		b := s.tail[0]
		s.tail = s.tail[1:]
		return b, nil
	}
	return 0, io.EOF
}

func (c *wsConn) inflate(p []byte, prefix int, verify bool) ([]byte, error) {
	c.zsrc = inflateSrc{p: p, tail: inflateTail}
	if c.zr == nil {
		c.zr = flate.NewReader(&c.zsrc)
	} else if err := c.zr.(flate.Resetter).Reset(&c.zsrc, nil); err != nil {
		return nil, err
	}
	if !verify {
		if cap(c.zbuf) < prefix {
			c.zbuf = make([]byte, prefix)
		}
		n, err := io.ReadFull(c.zr, c.zbuf[:prefix])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return c.zbuf[:n], nil
	}
	buf := bytes.NewBuffer(c.zbuf[:0])
	if _, err := buf.ReadFrom(c.zr); err != nil {
		return nil, err
	}
	c.zbuf = buf.Bytes()
	return c.zbuf, nil
}
