package transport

import (
	"errors"
	"fmt"
)

// StatusCode is a WebSocket close code (RFC 6455 section 7.4). Applications may
// use 4000-4999; wsactor never sends them on its own.
type StatusCode int

// Close codes defined by RFC 6455 and the IANA registry.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusReceived        StatusCode = 1005 // never sent; reported when a close frame had no code
	StatusAbnormalClosure         StatusCode = 1006 // never sent; reported when the TCP connection ended without a close frame
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
)

// String returns the code's registered name, or its number.
func (s StatusCode) String() string {
	switch s {
	case StatusNormalClosure:
		return "normal closure"
	case StatusGoingAway:
		return "going away"
	case StatusProtocolError:
		return "protocol error"
	case StatusUnsupportedData:
		return "unsupported data"
	case StatusNoStatusReceived:
		return "no status received"
	case StatusAbnormalClosure:
		return "abnormal closure"
	case StatusInvalidFramePayloadData:
		return "invalid frame payload data"
	case StatusPolicyViolation:
		return "policy violation"
	case StatusMessageTooBig:
		return "message too big"
	case StatusMandatoryExtension:
		return "mandatory extension"
	case StatusInternalError:
		return "internal error"
	case StatusServiceRestart:
		return "service restart"
	case StatusTryAgainLater:
		return "try again later"
	}
	return fmt.Sprintf("status %d", int(s))
}

// validSendCode reports whether code may be put in a close frame we send.
// 1014 is registered (and our reader accepts it), but gorilla/websocket
// peers refuse it, so it is sent as 1011.
func validSendCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// CloseError reports the close frame a connection ended with.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket closed: %d (%s)", int(e.Code), e.Code)
	}
	return fmt.Sprintf("websocket closed: %d (%s): %s", int(e.Code), e.Code, e.Reason)
}

// CloseStatus returns the code of the CloseError in err's chain, or -1.
func CloseStatus(err error) StatusCode {
	var ce CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrClosed is returned by sends on a connection that is closing or closed.
	ErrClosed = errors.New("transport: connection closed")
	// ErrQueueFull is reported for a message refused or dropped because the
	// outbound queue was full.
	ErrQueueFull = errors.New("transport: send queue full")
	// ErrConflated is reported for a keyed frame that a newer frame with the
	// same key replaced before it was written (see NewKeyedFrame).
	ErrConflated = errors.New("transport: replaced by a newer frame with the same key")
	// ErrMessageTooBig is the cause when a peer's message exceeded the read
	// limit; the connection is closed with StatusMessageTooBig.
	ErrMessageTooBig = errors.New("transport: message too big")
	// ErrInvalidUTF8 is the cause when a peer sent a text message that is not
	// valid UTF-8; the connection is closed with StatusInvalidFramePayloadData.
	ErrInvalidUTF8 = errors.New("transport: invalid UTF-8 in text message")
	// ErrTooManyFrames is the cause when a peer's message took more than
	// MessageFrames frames; the connection is closed with
	// StatusMessageTooBig.
	ErrTooManyFrames = errors.New("transport: too many frames in one message")
	// ErrMessageTimeout is the cause when a peer's message was not finished
	// within MessageTimeout; the connection is closed with
	// StatusPolicyViolation.
	ErrMessageTimeout = errors.New("transport: message not finished in time")
	// ErrProtocol is the cause when a peer broke the WebSocket protocol; the
	// connection is closed with StatusProtocolError.
	ErrProtocol = errors.New("transport: protocol error")
	// ErrCloseTimeout is the cause when the peer did not answer our close frame
	// within the close timeout.
	ErrCloseTimeout = errors.New("transport: close handshake timed out")
	// ErrWriteTimeout is reported when a write did not complete within the write
	// timeout; the connection is then closed.
	ErrWriteTimeout = errors.New("transport: write timed out")
)

// CloseInfo describes how a connection ended. It is passed exactly once to
// [Handler.HandleClose].
type CloseInfo struct {
	// Code and Reason are the peer's close frame if one arrived, otherwise the
	// close frame we sent, otherwise StatusAbnormalClosure.
	Code   StatusCode
	Reason string
	// ByPeer is true when the peer started the closing handshake (or dropped
	// the connection).
	ByPeer bool
	// Err is the cause when the connection did not end with a clean closing
	// handshake started by either side: ErrMessageTooBig, ErrInvalidUTF8,
	// ErrProtocol, ErrCloseTimeout, an I/O error, or the error passed to
	// [Conn.CloseWithError]. It is nil for a clean close.
	Err error
}

// HTTPError lets an authentication hook choose the HTTP status (and headers)
// of a refused upgrade. Any other error from the hook answers 401.
type HTTPError struct {
	Status int
	Header map[string][]string
	Err    error
}

func (e *HTTPError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("transport: upgrade refused with %d", e.Status)
	}
	return fmt.Sprintf("transport: upgrade refused with %d: %v", e.Status, e.Err)
}

func (e *HTTPError) Unwrap() error { return e.Err }
