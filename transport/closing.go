package transport

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
