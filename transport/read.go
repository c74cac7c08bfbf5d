package transport

import (
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

func (c *Conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

func (c *Conn) onPing(data string) error {
	c.touch()
	c.mu.Lock()
	if !c.closeQueue && c.broken == nil {
		c.pong = newControlFrame(opPong, []byte(data))
		c.kickLocked()
	}
	c.mu.Unlock()
	return nil
}

func (c *Conn) onPong(string) error {
	c.touch()
	if at := c.pingAt.Swap(0); at != 0 {
		c.rtt.Store(time.Now().UnixNano() - at)
	}
	return nil
}

// onClose runs on the reader when the peer's close frame arrives: it answers
// with our own close frame (echoing the code) unless we already sent one.
func (c *Conn) onClose(code int, text string) error {
	c.touch()
	c.mu.Lock()
	c.peerClose = &CloseError{Code: StatusCode(code), Reason: text}
	if c.closeQueue {
		c.mu.Unlock()
		return nil
	}
	c.closeQueue, c.byPeer = true, true
	echo := StatusCode(code)
	c.closeCode = echo
	c.closeFrame = newControlFrame(opClose, closePayload(echo, ""))
	c.kickLocked()
	c.mu.Unlock()
	return nil
}

// readLoop is the connection's only reader. It hands each message to the
// Handler and, once the peer's close frame, an error or the close timeout ends
// reading, closes the socket and reports the end.
func (c *Conn) readLoop() {
	var err error
	for {
		var (
			typ int
			r   io.Reader
		)
		typ, r, err = c.ws.NextReader()
		if err != nil {
			break
		}
		c.touch()
		c.mu.Lock()
		draining := c.closeQueue
		c.mu.Unlock()
		if draining {
			// After our close frame, data is dropped (RFC 6455 7.1.1). Do
			// not read r: that would inflate compressed messages. The next
			// NextReader skips the message's frames raw.
			continue
		}
		var data []byte
		data, err = readMessage(r, c.opts.ReadLimit)
		if errors.Is(err, ErrMessageTooBig) {
			c.closeWith(StatusMessageTooBig, "message too big", ErrMessageTooBig, false)
			continue
		}
		if c.isInflateError(err) {
			// Corrupt or truncated deflate data: fail with 1007 (as Node's
			// ws does) rather than drop TCP as if the peer had.
			c.closeWith(StatusInvalidFramePayloadData, "invalid compressed data", fmt.Errorf("transport: inflate: %w", err), false)
			continue
		}
		if err != nil {
			break
		}
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			c.closeWith(StatusInvalidFramePayloadData, "invalid UTF-8", ErrInvalidUTF8, false)
			continue
		}
		c.pausedAt.Store(time.Now().UnixNano())
		c.h.HandleMessage(c, MessageType(typ), data)
		c.pausedAt.Store(0)
		c.touch()
	}
	info, linger := c.teardown(err)
	c.h.HandleClose(c, info)
	if linger {
		c.linger()
	}
	close(c.done)
}

// teardown ends the TCP connection the way the closing handshake says (or
// asks the caller to linger first) and returns what the handler is told.
func (c *Conn) teardown(readErr error) (info CloseInfo, linger bool) {
	var ce *websocket.CloseError
	peerClosed := errors.As(readErr, &ce)
	if peerClosed && ce.Code == websocket.CloseAbnormalClosure {
		// gorilla reports a stream that ended without a close frame (EOF,
		// also mid-frame) as a CloseError with 1006; no close frame arrived
		// (gorilla refuses a received 1006), so this is not a peer close.
		peerClosed, readErr = false, io.ErrUnexpectedEOF
	}
	protoErr := !peerClosed && isProtocolError(readErr)
	// gorilla writes its own 1002 for every protocol error it reports except
	// ErrReadLimit (a 64-bit frame length with the top bit set, or a message
	// length that overflows): for that one, send ours.
	ownClose := protoErr && errors.Is(readErr, websocket.ErrReadLimit)
	if ownClose {
		c.closeWith(StatusProtocolError, "invalid frame length", nil, true)
	}

	c.mu.Lock()
	info = CloseInfo{Err: c.cause}
	switch {
	case peerClosed:
		info.Code, info.Reason, info.ByPeer = StatusCode(ce.Code), ce.Text, c.byPeer
	case protoErr:
		// gorilla has already written a 1002 close frame.
		info.Code, info.Reason = StatusProtocolError, readErr.Error()
		info.Err = errors.Join(ErrProtocol, readErr)
		c.closeQueue = true
		if !ownClose {
			c.closeSent = true
		}
	case c.closeQueue && !c.byPeer:
		info.Code, info.Reason = c.closeCode, c.closeText
		if info.Err == nil {
			info.Err = readErr
			if isTimeout(readErr) {
				info.Err = ErrCloseTimeout
			}
		}
	default:
		info.Code, info.ByPeer = StatusAbnormalClosure, !c.terminated
		if info.Err == nil {
			info.Err = readErr
		}
		if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) {
			info.Err = io.ErrUnexpectedEOF
		}
	}
	c.closeQueue = true
	c.mu.Unlock()

	linger = false
	switch {
	case peerClosed:
		// Both close frames are out once the writer has put ours on the
		// wire. A server then closes TCP at once (it closes first, RFC 6455
		// 7.1.1); a client waits for the server's FIN.
		select {
		case <-c.closeWrote:
		case <-time.After(c.opts.WriteTimeout):
		}
		linger = !c.isServer
	case protoErr:
		if ownClose {
			select {
			case <-c.closeWrote:
			case <-time.After(c.opts.WriteTimeout):
			}
		}
		// The peer may still be sending: half-close and drain, so our 1002
		// reaches it instead of a reset.
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

// linger waits, at most the close timeout, for the peer to end the TCP
// connection, discarding what it still sends, then closes the socket.
func (c *Conn) linger() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
	_, _ = io.Copy(io.Discard, c.nc)
	_ = c.nc.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isProtocolError tells gorilla's protocol errors (it has already sent 1002)
// from I/O errors. gorilla reports them as plain errors prefixed "websocket: ".
func isProtocolError(err error) bool {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return false
	}
	return len(err.Error()) > 11 && err.Error()[:11] == "websocket: "
}

// isInflateError tells a decompression failure (corrupt or truncated deflate
// data in a compressed message) from I/O and protocol errors, which gorilla
// passes through compress/flate unchanged. A bare io.ErrUnexpectedEOF is
// flate's for a truncated stream, or the socket's (crypto/tls ends a stream
// so mid-record): gorilla records every error of its own frame reader in its
// unexported readErr, so the error is flate's when that is still nil
// (pinned by the "truncated stored block" cases of the CorruptCompressedData
// tests).
func (c *Conn) isInflateError(err error) bool {
	var ce flate.CorruptInputError
	var ie flate.InternalError
	if errors.As(err, &ce) || errors.As(err, &ie) {
		return true
	}
	if err != io.ErrUnexpectedEOF || !c.compress {
		return false
	}
	f := reflect.ValueOf(c.ws).Elem().FieldByName("readErr")
	return f.IsValid() && f.Kind() == reflect.Interface && f.IsNil()
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
