package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// closing is where a connection stands in the closing handshake (RFC 6455
// section 7), guarded by Conn.mu. The stage only moves forward: open, then
// our close frame queued (nothing more may be sent), then written (nothing
// more may be written, pongs and pings included). origin says who began
// the end: us (Close, a failure we answered with a close frame), the peer
// (its close frame came first and ours is the answer), or Terminate
// (no handshake at all).
type closing struct {
	stage  closeStage
	origin closeOrigin
	code   StatusCode  // the code of our close frame (or what ended us)
	text   string      // the reason of our close frame
	peer   *CloseError // the peer's close frame, once read
	cause  error       // why we closed, if not a clean close
}

type closeStage uint8

const (
	stageOpen   closeStage = iota // data may be sent
	stageQueued                   // our close frame is queued: no more data
	stageSent                     // our close frame is written: nothing more to write
)

type closeOrigin uint8

const (
	originNone      closeOrigin = iota
	originUs                    // we queued our close frame first
	originPeer                  // the peer's close frame came first
	originTerminate             // Terminate closed the socket before any close frame
)

// queued reports whether our close frame is queued or written: no data
// may be sent any more.
func (s *closing) queued() bool { return s.stage >= stageQueued }

// sent reports whether our close frame is on the wire.
func (s *closing) sent() bool { return s.stage == stageSent }

// byPeer reports whether the peer's close frame came before ours.
func (s *closing) byPeer() bool { return s.origin == originPeer }

// begin moves an open connection to stageQueued and reports whether this
// call did. o, us or the peer, becomes the origin, even after Terminate
// (the close frame names the end better); originNone (a failure, the
// reader's end) leaves the origin as it is.
func (s *closing) begin(o closeOrigin) bool {
	if s.queued() {
		return false
	}
	s.stage = stageQueued
	if o != originNone {
		s.origin = o
	}
	return true
}

// Close starts the closing handshake with code and reason, and returns at
// once; wait on [Conn.Done] to know when it is over. Only the first close
// takes effect, and nothing more can be sent after it.
//
// Messages already queued are written first, then the close frame. The
// drain has no overall deadline: it lasts as long as the peer keeps reading,
// but every write (at most 1 MiB) must still finish within WriteTimeout, so a
// peer that stops reading is cut off with ErrWriteTimeout (without a close
// frame), and the queue is bounded (QueueMessages, QueueBytes), so the drain ends. CloseTimeout counts
// from the moment the close frame is written, not from Close: the peer then
// has that long to answer before the socket is closed (ErrCloseTimeout). To
// bound the drain yourself, call [Conn.DiscardQueued] when your deadline
// passes.
func (c *Conn) Close(code StatusCode, reason string) {
	c.closeWith(code, reason, nil, false)
}

// CloseWithError is Close with a cause reported in [CloseInfo.Err], and
// queued messages are discarded (each reported with ErrClosed) rather than
// written first, as by [Conn.DiscardQueued]: the frame being written is
// finished and the close frame goes out next.
func (c *Conn) CloseWithError(code StatusCode, reason string, cause error) {
	c.closeWith(code, reason, cause, true)
}

// Terminate closes the socket at once, without a closing handshake (ws's
// terminate()), and reports cause in [CloseInfo.Err] unless another cause
// came first.
func (c *Conn) Terminate(cause error) {
	c.mu.Lock()
	if c.cl.cause == nil {
		c.cl.cause = cause
	}
	if c.cl.origin == originNone {
		c.cl.origin = originTerminate
	}
	c.mu.Unlock()
	_ = c.nc.Close()
	c.wakeReader() // a parked reader sees the closed socket and ends
}

// closeWith queues our close frame (once); with discard, unwritten messages
// are dropped first (see dropUnwrittenLocked). It never blocks. The close
// timeout is not started here but by the writer, once the close frame is on
// the wire (see closeWritten).
func (c *Conn) closeWith(code StatusCode, reason string, cause error, discard bool) bool {
	var dropped []func(error)
	c.mu.Lock()
	if !c.cl.begin(originUs) {
		c.mu.Unlock()
		return false
	}
	if !validSendCode(code) {
		code = StatusInternalError
	}
	c.cl.code, c.cl.text, c.cl.cause = code, reason, cause
	if discard {
		dropped, _ = c.dropUnwrittenLocked()
	}
	c.closeFrame = newControlFrame(opClose, closePayload(code, reason))
	c.kickLocked()
	c.mu.Unlock()
	for _, d := range dropped {
		d(ErrClosed)
	}
	return true
}

func closePayload(code StatusCode, reason string) []byte {
	if code == StatusNoStatusReceived {
		return nil
	}
	if !validSendCode(code) {
		code = StatusInternalError
	}
	if len(reason) > maxControlPayload-2 {
		reason = truncateUTF8(reason, maxControlPayload-2)
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(p, reason...)
}

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// closeReadDeadline returns when reading ends if the peer does not answer
// our close frame: CloseTimeout after it was written, or the zero time
// before it is written.
func (c *Conn) closeReadDeadline() time.Time {
	if ns := c.closeWrittenAt.Load(); ns != 0 {
		return time.Unix(0, ns).Add(c.opts.CloseTimeout)
	}
	return time.Time{}
}

// closeWritten records that our close frame is on the wire: the close
// timeout starts now, bounding the reader, which keeps reading (and dropping
// data) until the peer's close frame arrives.
func (c *Conn) closeWritten() {
	c.closeWrittenAt.Store(time.Now().UnixNano())
	_ = c.nc.SetReadDeadline(c.closeReadDeadline())
	c.mu.Lock()
	c.cl.stage = stageSent
	c.mu.Unlock()
	c.fire(&c.closeWrote)
	c.wakeReader() // to wait for the peer's close frame, within the timeout
}

// closeBegun reports whether a close frame has been queued (by either side).
func (c *Conn) closeBegun() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cl.queued()
}

// onPeerClose checks the peer's close payload (RFC 6455 sections 5.5.1 and
// 7.4) and answers it with our close frame unless we sent one first.
func (c *Conn) onPeerClose(p []byte) *violation {
	code, reason := StatusNoStatusReceived, ""
	switch {
	case len(p) == 1:
		return &violation{"close frame with a 1-byte payload"}
	case len(p) >= 2:
		code = StatusCode(binary.BigEndian.Uint16(p))
		if !validReceivedCode(code) {
			return &violation{fmt.Sprintf("invalid close code %d", int(code))}
		}
		if !utf8.Valid(p[2:]) {
			return &violation{"invalid UTF-8 in close reason"}
		}
		reason = string(p[2:])
	}
	c.mu.Lock()
	c.cl.peer = &CloseError{Code: code, Reason: reason}
	// The peer reads nothing more: what is not on the wire yet is lost,
	// and our close frame goes out next, after the frame in flight
	// (RFC 6455 5.5.1: "as soon as practical").
	dropped, _ := c.dropUnwrittenLocked()
	defer func() {
		for _, d := range dropped {
			d(ErrClosed)
		}
	}()
	if c.cl.begin(originPeer) {
		c.cl.code = code
		// Echo the code (RFC 6455 5.5.1), whatever it is: the peer sent it.
		var echo []byte
		if code != StatusNoStatusReceived {
			echo = binary.BigEndian.AppendUint16(nil, uint16(code))
		}
		c.closeFrame = newControlFrame(opClose, echo)
		c.kickLocked()
	}
	c.mu.Unlock()
	return nil
}

// validReceivedCode reports whether a close frame may carry code (RFC 6455
// section 7.4 and the IANA registry, as Node's ws checks it).
func validReceivedCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// teardown ends the TCP connection the way the closing handshake says (or
// asks the caller to linger first) and returns what the handler is told.
func (c *Conn) teardown(readErr error) (info CloseInfo, linger bool) {
	var v *violation
	protoErr := errors.As(readErr, &v)
	if protoErr {
		// Queued data is written first (as Node's ws does), then our 1002;
		// a no-op if we were closing already.
		c.closeWith(StatusProtocolError, v.reason, fmt.Errorf("%w: %s", ErrProtocol, v.reason), false)
	}
	peerClosed := readErr == errPeerClosed

	c.mu.Lock()
	info = CloseInfo{Err: c.cl.cause}
	switch {
	case peerClosed:
		info.Code, info.Reason, info.ByPeer = c.cl.peer.Code, c.cl.peer.Reason, c.cl.byPeer()
	case c.cl.queued() && !c.cl.byPeer():
		info.Code, info.Reason = c.cl.code, c.cl.text
		if info.Err == nil {
			info.Err = readErr
			if isTimeout(readErr) {
				info.Err = ErrCloseTimeout
			}
		}
	default:
		info.Code, info.ByPeer = StatusAbnormalClosure, c.cl.origin != originTerminate
		if info.Err == nil {
			info.Err = readErr
		}
		if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) {
			info.Err = io.ErrUnexpectedEOF
		}
	}
	c.cl.begin(originNone) // nothing more is sent
	c.mu.Unlock()

	switch {
	case peerClosed:
		// Both close frames are out once the writer has put ours on the
		// wire. A server then closes TCP at once (it closes first, RFC 6455
		// 7.1.1); a client waits for the server's FIN.
		c.waitCloseWritten(c.opts.WriteTimeout)
		linger = !c.isServer
	case protoErr:
		// The peer may still be sending: once our close frame is out,
		// half-close and drain, so it reaches the peer instead of a reset.
		c.waitCloseWritten(c.opts.CloseTimeout)
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		linger = true
	}
	if !linger {
		_ = c.nc.Close()
	}
	c.mu.Lock()
	if c.broken == nil {
		c.broken = ErrClosed
	}
	dropped := c.dropQueueLocked()
	c.mu.Unlock()
	for _, d := range dropped {
		d(ErrClosed)
	}
	return info, linger
}

// waitCloseWritten waits, at most d, for our close frame to be written.
func (c *Conn) waitCloseWritten(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.event(&c.closeWrote):
	case <-t.C:
	}
}

// linger waits, at most the close timeout, for the peer to end the TCP
// connection, discarding what it still sends, then closes the socket.
func (c *Conn) linger() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
	_, _ = io.Copy(io.Discard, c.nc)
	_ = c.nc.Close()
}
