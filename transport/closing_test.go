package transport

import "testing"

// The closing handshake's state: the stage only moves forward, the first
// close frame names the origin, a failure or the reader's end changes no
// origin, and a close frame after Terminate names the end better.
func TestClosingState(t *testing.T) {
	t.Parallel()
	var s closing
	if s.queued() || s.sent() || s.byPeer() {
		t.Fatal("a new connection is closing")
	}
	if !s.begin(originPeer) || !s.queued() || !s.byPeer() {
		t.Fatalf("peer first: %+v", s)
	}
	if s.begin(originUs) || !s.byPeer() {
		t.Fatal("a second begin changed the origin")
	}
	s.stage = stageSent
	if !s.sent() || !s.queued() || s.begin(originNone) || s.stage != stageSent {
		t.Fatalf("after the close frame was written: %+v", s)
	}

	s = closing{origin: originTerminate}
	if !s.begin(originNone) || s.origin != originTerminate {
		t.Fatalf("a failure after Terminate: %+v", s)
	}
	s = closing{origin: originTerminate}
	if !s.begin(originUs) || s.origin != originUs || s.byPeer() {
		t.Fatalf("our close frame after Terminate: %+v", s)
	}
}
