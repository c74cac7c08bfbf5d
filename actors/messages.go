package actors

import (
	"errors"
	"time"

	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// MessageType is the type of a data message: Text or Binary.
type MessageType = transport.MessageType

// Data message types.
const (
	Text   = transport.MessageText
	Binary = transport.MessageBinary
)

// StatusCode is a WebSocket close code.
type StatusCode = transport.StatusCode

// Close codes, re-exported from transport for handler code.
const (
	StatusNormalClosure           = transport.StatusNormalClosure
	StatusGoingAway               = transport.StatusGoingAway
	StatusUnsupportedData         = transport.StatusUnsupportedData
	StatusInvalidFramePayloadData = transport.StatusInvalidFramePayloadData
	StatusPolicyViolation         = transport.StatusPolicyViolation
	StatusMessageTooBig           = transport.StatusMessageTooBig
	StatusInternalError           = transport.StatusInternalError
	StatusServiceRestart          = transport.StatusServiceRestart
	StatusTryAgainLater           = transport.StatusTryAgainLater
)

// Opened is the first message a connection's behaviour receives after
// *actor.Started. Conn carries the handshake's facts: request, principal,
// client IP, subprotocol, compression.
//
// Under HandlerPanic's supervisor.Restart, a fresh behaviour that replaces
// one that panicked receives *actor.Started and then an Opened for the same
// Conn (the socket is kept), with Restarted set to the panic; it gets none
// if the connection has already closed.
type Opened struct {
	Conn *Conn
	// Restarted is nil for a new session (a new socket), and the panic that
	// made this behaviour replace its predecessor on a restart.
	Restarted *PanicError
}

// Message is a data message from the peer. Data belongs to the receiver: the
// reader never reuses it.
type Message struct {
	Conn *Conn
	Type MessageType
	Data []byte
	// Value is what HandlerOptions.Decode returned for Data (nil without a
	// decoder). Decoding runs on the connection's reader goroutine, off the
	// actor.
	Value any

	// Set by the reader: the message holds held bytes of its connection's
	// inbox until it has been handled.
	admitted bool
	held     int
}

// Text returns Data as a string.
func (m *Message) Text() string { return string(m.Data) }

// Closed is the last message before the connection actor stops, delivered
// exactly once. Code and Reason are the peer's close frame if one arrived,
// otherwise ours; Err says why when the close was not a clean handshake (see
// transport.CloseInfo), e.g. transport.ErrMessageTooBig, a *PanicError, or
// ErrStopped.
type Closed struct {
	Conn   *Conn
	Code   StatusCode
	Reason string
	ByPeer bool
	Err    error
}

// Reconnecting tells a dialed connection's behaviour (with
// DialOptions.Reconnect set) that the connection ended and attempt number
// Attempt will start after Delay. It follows the session's *Closed; a new
// *Opened with a new Conn follows a successful attempt. Err is why the last
// session or attempt ended. Stop the actor to give up.
type Reconnecting struct {
	Attempt int
	Delay   time.Duration
	Err     error
}

// Send asks a connection (sent to its PID) to send a message. Set either
// Frame (shared, e.g. a broadcast) or Type and Data. With ReplyTo set, the
// outcome comes back to ReplyTo as a *Sent carrying ID.
type Send struct {
	Type    MessageType
	Data    []byte
	Frame   *transport.Frame
	ReplyTo *PID
	ID      uint64
}

// Sent reports the outcome of a *Send that had ReplyTo set: Err is nil once
// the frame was written to the socket, or says why it was not
// (transport.ErrClosed, transport.ErrQueueFull, transport.ErrWriteTimeout, an
// I/O error).
type Sent struct {
	ID  uint64
	Err error
}

// Close asks a connection (sent to its PID) to close with Code and Reason.
// Queued messages are written first.
type Close struct {
	Code   StatusCode
	Reason string
}

// ErrStopped is the Closed.Err of a connection whose actor was stopped (by
// actor.Context.Stop or a supervisor) before its socket closed. The socket is
// closed with 1001.
var ErrStopped = errors.New("actors: connection actor stopped")

// PanicError is a recovered panic of a connection's behaviour or decoder:
// the Closed.Err of a connection closed with 1011 because of a panic past
// its policy's budget (or under supervisor.Stop), and Opened.Restarted.
type PanicError = supervisor.PanicError

// closedEvent carries the transport's end into the mailbox.
type closedEvent struct{ info transport.CloseInfo }

// Messages that may arrive after the actor stopped are not worth a
// dead-letter log line.
func (*closedEvent) IgnoreDeadLetterLogging() {}
func (*Message) IgnoreDeadLetterLogging()     {}
func (*Send) IgnoreDeadLetterLogging()        {}
func (*Close) IgnoreDeadLetterLogging()       {}
func (*panicClose) IgnoreDeadLetterLogging()  {}
func (*Sent) IgnoreDeadLetterLogging()        {}
