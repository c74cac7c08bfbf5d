package transport

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// The reader: RFC 6455 frames and RFC 7692 permessage-deflate, parsed by us
// from the socket. One goroutine per connection runs readLoop; it owns the
// message being assembled and everything below, so none of it is locked.
//
// Which close code answers what (docs/conformance.md has the table):
//   - a broken frame (reserved bits or opcodes, a fragmented or oversized
//     control frame, a continuation out of place, the wrong masking, a
//     64-bit length with the top bit set, a bad close payload): 1002, and
//     reading stops, since the framing can no longer be trusted;
//   - a message over ReadLimit (compressed or inflated), or with more than
//     MessageFrames frames: 1009; a message not finished within
//     MessageTimeout: 1008; invalid UTF-8 in a text message, or compressed
//     data that does not inflate: 1007. The framing is intact, so the reader
//     goes on reading frames (dropping data) until the peer's close frame or
//     the close timeout.

// wireHeader is one parsed frame header.
type wireHeader struct {
	fin    bool
	rsv1   bool
	op     byte
	masked bool
	key    [4]byte
	length int64
}

// violation is a peer's protocol error: the connection is failed with 1002.
type violation struct{ reason string }

func (v *violation) Error() string { return "transport: protocol error: " + v.reason }

// errParked ends a reader that parked its connection in the poller.
var errParked = errors.New("transport: reader parked")

// errPeerClosed ends reading when the peer's close frame has arrived.
var errPeerClosed = errors.New("transport: peer sent close")

// assembly is the data message being read.
type assembly struct {
	active     bool
	typ        MessageType
	compressed bool
	dropping   bool // refused or closing: payload is skipped, nothing delivered
	frames     int  // frames (control frames included) since the message began
	deadline   int64
	buf        []byte
	valid      int // buf[:valid] is checked UTF-8 (uncompressed text)
}

// deflateTail ends a permessage-deflate message for the inflater: the sync
// flush marker the sender removed (RFC 7692 section 7.2.2) and an empty final
// stored block, so flate reports io.EOF at the message's end.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// readChunk is the most payload read between two checks of the message
// deadline, so a frame trickled in slowly is still bounded by it.
const readChunk = 64 << 10

// touch records that bytes arrived from the peer and returns the time.
func (c *Conn) touch() int64 {
	now := time.Now().UnixNano()
	c.lastSeen.Store(now)
	return now
}

// readLoop is the connection's only reader. It hands each message to the
// Handler and, once the peer's close frame, an error or the close timeout ends
// reading, closes the socket and reports the end.
func (c *Conn) readLoop() {
	err := c.readFrames()
	if err == errParked || err == errHandedOff {
		return // the poller starts a new reader when bytes arrive, or one was started
	}
	if c.poll != nil {
		c.poll.forget(c)
	}
	info, linger := c.teardown(err)
	c.h.HandleClose(c, info)
	if linger {
		c.linger()
	}
	// teardown set broken, so no writer starts any more; the socket is
	// closed, so a running one ends at once.
	c.writers.Wait()
	c.fire(&c.done)
}

// fail closes the connection with code because of the current message and
// drops the rest of it. The framing is intact: reading goes on.
func (c *Conn) fail(m *assembly, code StatusCode, reason string, cause error) {
	c.closeWith(code, reason, cause, false)
	m.dropping = true
	m.buf = nil
}

// readFrames reads until the peer's close frame (errPeerClosed), a protocol
// violation (*violation) or an I/O error, and returns which.
func (c *Conn) readFrames() error {
	var (
		m   assembly
		ctl [maxControlPayload]byte
		// controlOnly: this reader has read frames, all of them control
		// frames. A reader woken by a heartbeat's pong (or a peer's ping)
		// parks again as soon as it has read it, instead of waiting
		// IdleReader for data that a quiet peer will not send: heartbeats
		// that reach every idle connection at once then cost no goroutine
		// each for a second.
		controlOnly, sawData bool
		// armedUntil: the idle deadline set on the socket expires then
		// (unix nanos); 0 when none is set. It stays set from message to
		// message while every read is a header read at a boundary or a
		// read the buffer answers, and is renewed only when less than half
		// of IdleReader is left: setting and clearing it around every
		// message cost a busy connection 4% of its CPU. So a quiet reader
		// parks between IdleReader/2 and IdleReader after its last message.
		armedUntil int64
	)
	disarm := func() {
		if armedUntil != 0 {
			c.restoreReadDeadline()
			armedUntil = 0
		}
	}
	defer disarm() // the next reader (or the close) starts with no idle deadline
	gen := c.readerGen.Load()
	for {
		// At a message boundary with nothing buffered the reader would
		// block: it waits IdleReader at most, then parks (poll_linux.go).
		idle := c.poll != nil && !m.active && c.br.Buffered() == 0 && !c.closeBegun()
		if idle && controlOnly {
			disarm()
			if c.park() {
				return errParked
			}
		}
		if idle {
			now := time.Now().UnixNano()
			if armedUntil-now < int64(c.opts.IdleReader)/2 {
				armedUntil = now + int64(c.opts.IdleReader)
				_ = c.nc.SetReadDeadline(time.Unix(0, armedUntil))
			}
		} else {
			disarm() // a read that may wait must not time out
		}
		h, err := c.readHeader()
		if idle && err != nil && isTimeout(err) {
			disarm()
			if c.br.Buffered() == 0 && c.park() {
				return errParked
			}
			if !c.closeExpired() {
				continue // a header under way, or closing: read on
			}
		}
		if err != nil {
			return err
		}
		if armedUntil != 0 && int64(c.br.Buffered()) < h.length {
			disarm() // the payload's reads may wait for the socket
		}
		now := c.touch()
		if v := c.checkHeader(&h, m.active); v != nil {
			return v
		}
		if m.active {
			m.frames++
			if !m.dropping {
				switch {
				case m.frames > c.opts.MessageFrames:
					c.fail(&m, StatusMessageTooBig, "too many frames in one message", ErrTooManyFrames)
				case now > m.deadline:
					c.fail(&m, StatusPolicyViolation, "message not finished in time", ErrMessageTimeout)
				}
			}
		}

		if h.op >= opClose {
			controlOnly = !sawData
			p := ctl[:h.length]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return err
			}
			if h.masked {
				maskBytes(h.key, p)
			}
			switch h.op {
			case opPing:
				c.queuePong(bytes.Clone(p))
			case opPong:
				if at := c.pingAt.Swap(0); at != 0 {
					c.rtt.Store(now - at)
					if c.opts.OnPong != nil {
						c.opts.OnPong(time.Duration(now - at))
					}
				}
			case opClose:
				if v := c.onPeerClose(p); v != nil {
					return v
				}
				return errPeerClosed
			}
			continue
		}

		sawData, controlOnly = true, false
		if h.op != opContinuation {
			m = assembly{
				active:     true,
				typ:        MessageType(h.op),
				compressed: h.rsv1,
				frames:     1,
				deadline:   now + int64(c.opts.MessageTimeout),
				dropping:   c.closeBegun(),
			}
		} else if !m.dropping && c.closeBegun() {
			m.dropping, m.buf = true, nil
		}
		if !m.dropping && tooBig(int64(len(m.buf)), h.length, c.opts.ReadLimit, m.compressed) {
			c.fail(&m, StatusMessageTooBig, "message too big", ErrMessageTooBig)
		}
		if m.dropping {
			if err := c.skipPayload(h.length); err != nil {
				return err
			}
		} else if err := c.readPayload(&m, &h); err != nil {
			return err
		}
		if !h.fin {
			continue
		}
		if !m.dropping {
			wire := len(m.buf)
			if data, ok := c.finish(&m); ok {
				c.in.wireIn.Add(uint64(wire))
				c.in.msgsIn.Add(1)
				c.in.bytesIn.Add(uint64(len(data)))
				c.pausedAt.Store(time.Now().UnixNano())
				c.handing.Store(gen + 1)
				c.h.HandleMessage(c, m.typ, data)
				if c.readerGen.Load() != gen {
					// HandOffReading: another reader reads on, with
					// the deadline restored; this goroutine is done.
					armedUntil = 0
					return errHandedOff
				}
				c.handing.CompareAndSwap(gen+1, 0)
				c.pausedAt.Store(0)
			}
		}
		m = assembly{}
	}
}

// errHandedOff ends a reader that handed the reading to a new one
// (HandOffReading).
var errHandedOff = errors.New("transport: reading handed off")

// HandOffReading starts a new reader goroutine for the connection while the
// current reader is inside [Handler.HandleMessage], and reports whether it
// did: the new reader reads on at once, and the one inside HandleMessage
// stops reading when HandleMessage returns (it goes back to its caller, not
// to the socket). For a handler that finds, while handling a message, that
// it will be busy for long: the peer is then read, its pings answered, as if
// the handler had returned. It does nothing and returns false when no reader
// is inside HandleMessage, or when this HandleMessage has handed off
// already. Safe from any goroutine.
func (c *Conn) HandOffReading() bool { return c.HandOffReadingAt(c.handing.Load()) }

// ReadingToken returns a token for the Handler.HandleMessage call under way,
// 0 when no reader is inside HandleMessage. Called from within
// HandleMessage, it names that call: [Conn.HandOffReadingAt] with it hands
// off that call's reading only, never the reading of the reader that took
// over after a hand-off.
func (c *Conn) ReadingToken() uint32 { return c.handing.Load() }

// HandOffReadingAt is [Conn.HandOffReading] for the HandleMessage call
// token names (ReadingToken): it does nothing and returns false when that
// call has returned or handed off already.
func (c *Conn) HandOffReadingAt(token uint32) bool {
	g := token
	if g == 0 || !c.handing.CompareAndSwap(g, 0) {
		return false
	}
	// The reader inside HandleMessage reads nothing until it returns: take
	// its idle deadline off the socket, count it as reading, and start its
	// successor with the next generation.
	c.restoreReadDeadline()
	c.pausedAt.Store(0)
	c.readerGen.Store(g)
	go c.readLoop()
	return true
}

// readHeader reads and parses one frame header.
func (c *Conn) readHeader() (wireHeader, error) {
	var h wireHeader
	p, err := c.br.Peek(2)
	if err != nil {
		if len(p) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	n := 2
	switch p[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if p[1]&maskBit != 0 {
		n += 4
	}
	if p, err = c.br.Peek(n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	h.fin = p[0]&finBit != 0
	h.rsv1 = p[0]&rsv1Bit != 0
	h.op = p[0] & 0x0f
	h.masked = p[1]&maskBit != 0
	switch l := p[1] & 0x7f; l {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(p[2:]))
	case 127:
		u := binary.BigEndian.Uint64(p[2:])
		if u>>63 != 0 {
			h.length = -1 // refused by checkHeader
		} else {
			h.length = int64(u)
		}
	default:
		h.length = int64(l)
	}
	if h.masked {
		copy(h.key[:], p[n-4:n])
	}
	if p[0]&0x30 != 0 {
		h.op |= 0x80 // RSV2 or RSV3: refused by checkHeader
	}
	_, _ = c.br.Discard(n)
	return h, nil
}

// checkHeader applies RFC 6455 section 5 and RFC 7692 section 6 to a frame
// header, given whether a fragmented message is under way.
func (c *Conn) checkHeader(h *wireHeader, inMessage bool) *violation {
	switch {
	case h.op&0x80 != 0:
		return &violation{"reserved bits RSV2/RSV3 set"}
	case h.length < 0:
		return &violation{"frame length with the most significant bit set"}
	case c.isServer && !h.masked:
		return &violation{"unmasked frame from a client"}
	case !c.isServer && h.masked:
		return &violation{"masked frame from a server"}
	}
	switch h.op {
	case opClose, opPing, opPong:
		switch {
		case !h.fin:
			return &violation{"fragmented control frame"}
		case h.length > maxControlPayload:
			return &violation{fmt.Sprintf("control frame with a %d-byte payload", h.length)}
		case h.rsv1:
			return &violation{"RSV1 set on a control frame"}
		}
	case opContinuation:
		switch {
		case !inMessage:
			return &violation{"continuation frame outside a message"}
		case h.rsv1:
			return &violation{"RSV1 set on a continuation frame"}
		}
	case byte(MessageText), byte(MessageBinary):
		switch {
		case inMessage:
			return &violation{"new message before the previous one ended"}
		case h.rsv1 && !c.compress:
			return &violation{"RSV1 set without permessage-deflate"}
		}
	default:
		return &violation{fmt.Sprintf("reserved opcode %d", h.op)}
	}
	return nil
}

// readPayload appends the frame's payload to the message, unmasked, in chunks
// that each refresh LastSeen and check the message deadline, and checks
// uncompressed text as it arrives so invalid UTF-8 fails at once.
func (c *Conn) readPayload(m *assembly, h *wireHeader) error {
	n := int(h.length)
	start := len(m.buf)
	// Where this frame's payload ends in m.buf: the message's end too, for
	// a final frame, where a compressed message needs room for deflateTail.
	end := start + n
	if h.fin && m.compressed {
		end += len(deflateTail)
	}
	checkText := m.typ == MessageText && !m.compressed
	for off := 0; off < n; {
		if cap(m.buf) < start+off+min(n-off, readChunk) {
			m.grow(start+off+min(n-off, readChunk), end)
		}
		k, err := c.br.Read(m.buf[start+off : start+min(n, off+readChunk)])
		if k > 0 {
			seg := m.buf[start+off : start+off+k]
			if h.masked {
				maskAt(h.key, off, seg)
			}
			off += k
			m.buf = m.buf[:start+off]
			if checkText {
				// Fail fast: in the chunk that shows the error, even in
				// the middle of a frame (Autobahn 6.4.3, 6.4.4).
				v, ok := utf8Prefix(m.buf, m.valid)
				if !ok {
					c.fail(m, StatusInvalidFramePayloadData, "invalid UTF-8", ErrInvalidUTF8)
					return c.skipPayload(int64(n - off))
				}
				m.valid = v
			}
			if now := c.touch(); now > m.deadline && off < n {
				c.fail(m, StatusPolicyViolation, "message not finished in time", ErrMessageTimeout)
				return c.skipPayload(int64(n - off))
			}
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// preallocMax is the most of a frame's declared length that is allocated
// before its bytes arrive: a header alone cannot make the reader allocate a
// whole ReadLimit.
const preallocMax = 64 << 10

// grow makes room in m.buf for at least need bytes, doubling as the payload
// arrives, and never past end (where the frame, or the message, ends).
func (m *assembly) grow(need, end int) {
	c := max(need, 2*cap(m.buf), min(end, preallocMax))
	c = max(min(c, end), need)
	b := make([]byte, len(m.buf), c)
	copy(b, m.buf)
	m.buf = b
}

// wireLimit is the most payload bytes a message may take on the wire: the
// read limit, and for a compressed message the limit plus deflate's worst
// case overhead for incompressible data (5 bytes per 65,535-byte stored
// block), so that whatever inflates to at most the limit is read, and the
// compressed bytes held while a message arrives stay bounded too.
func wireLimit(limit int64, compressed bool) int64 {
	if !compressed || limit > math.MaxInt64/2 {
		return limit
	}
	return limit + 5*(limit/65535+1) + 16
}

// tooBig reports whether a message holding have bytes cannot take a frame
// of n more under limit (no limit when negative; even then, no message may
// come near the address space).
func tooBig(have, n, limit int64, compressed bool) bool {
	if n > math.MaxInt64/4-have {
		return true
	}
	return limit >= 0 && have+n > wireLimit(limit, compressed)
}

// skipPayload reads and drops n payload bytes.
func (c *Conn) skipPayload(n int64) error {
	for n > 0 {
		k, err := c.br.Discard(int(min(n, readChunk)))
		n -= int64(k)
		if k > 0 {
			c.touch()
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// finish completes a message: inflates it if compressed and checks text.
// It returns false when the message failed the connection.
func (c *Conn) finish(m *assembly) ([]byte, bool) {
	data := m.buf
	if m.compressed {
		var err error
		var window []byte
		if c.client != nil {
			window = c.client.window
		}
		data, err = inflate(append(m.buf, deflateTail...), c.opts.ReadLimit, window)
		switch {
		case errors.Is(err, ErrMessageTooBig):
			c.fail(m, StatusMessageTooBig, "message too big", ErrMessageTooBig)
			return nil, false
		case err != nil:
			c.fail(m, StatusInvalidFramePayloadData, "invalid compressed data", fmt.Errorf("transport: inflate: %w", err))
			return nil, false
		}
		if m.typ == MessageText && !utf8.Valid(data) {
			c.fail(m, StatusInvalidFramePayloadData, "invalid UTF-8", ErrInvalidUTF8)
			return nil, false
		}
		if window != nil {
			c.client.window = slideWindow(window, data)
		}
	} else if m.typ == MessageText && m.valid != len(data) {
		// The message ends inside a character.
		c.fail(m, StatusInvalidFramePayloadData, "invalid UTF-8", ErrInvalidUTF8)
		return nil, false
	}
	if data == nil {
		data = []byte{}
	}
	return data, true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maskAt unmasks b, which starts at payload offset off.
func maskAt(key [4]byte, off int, b []byte) {
	if r := off & 3; r != 0 {
		key = [4]byte{key[r], key[(r+1)&3], key[(r+2)&3], key[(r+3)&3]}
	}
	maskBytes(key, b)
}

// utf8Prefix checks p[done:] (p[:done] was checked before and ends on a
// character boundary), allowing p to end inside a character whose bytes so
// far are a valid start. It returns the new boundary, or false as soon as
// the bytes cannot be UTF-8 whatever follows.
func utf8Prefix(p []byte, done int) (int, bool) {
	tail := p[done:]
	cut := len(tail)
	for i := len(tail) - 1; i >= 0 && i >= len(tail)-3; i-- {
		if utf8.RuneStart(tail[i]) {
			// FullRune is false only for a valid but incomplete start
			// (it checks the second and third bytes' ranges).
			if !utf8.FullRune(tail[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(tail[:cut]) {
		return done, false
	}
	return done + cut, true
}

// flateReaders pools inflaters (about 40 KB each), so a connection holds
// none between messages.
var flateReaders sync.Pool

// windowSize is deflate's largest window, 32 KiB (RFC 1951).
const windowSize = 1 << 15

// slideWindow appends data to the window, keeping its last windowSize
// bytes, in the window's own storage.
func slideWindow(w, data []byte) []byte {
	if len(data) >= windowSize {
		return append(w[:0], data[len(data)-windowSize:]...)
	}
	if over := len(w) + len(data) - windowSize; over > 0 {
		w = w[:copy(w, w[over:])]
	}
	return append(w, data...)
}

// inflate decompresses one permessage-deflate message (with deflateTail
// appended), refusing output over limit without producing it. dict is what
// the peer's earlier messages inflated to, when it keeps its context (nil
// when every message stands alone).
func inflate(p []byte, limit int64, dict []byte) ([]byte, error) {
	src := bytes.NewReader(p)
	fr, _ := flateReaders.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReaderDict(src, dict)
	} else if err := fr.(flate.Resetter).Reset(src, dict); err != nil {
		return nil, err
	}
	data, err := readMessage(fr, limit)
	src.Reset(nil) // the pooled inflater keeps src: it must not pin p
	flateReaders.Put(fr)
	return data, err
}

// readMessage reads one message, refusing it once it exceeds limit bytes
// (limit < 0: no limit) without reading further, so a compressed bomb is never
// inflated past the limit.
func readMessage(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			next := 2 * cap(buf)
			// next-1 > limit is next > limit+1 without overflowing
			// when limit is math.MaxInt64.
			if limit >= 0 && int64(next)-1 > limit {
				next = int(limit + 1)
			}
			if next <= cap(buf) {
				return nil, ErrMessageTooBig
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if limit >= 0 && int64(len(buf)) > limit {
			return nil, ErrMessageTooBig
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
