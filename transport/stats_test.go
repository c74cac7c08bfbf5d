package transport

import (
	"testing"
	"time"
)

// The counters follow what crosses the connection: messages and bytes each
// way, frames and writes, refusals and conflations.
func TestConnStats(t *testing.T) {
	s := startServer(t, serverConfig{opts: &AcceptOptions{QueueMessages: 2, Overflow: OverflowDropNewest}})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	for _, p := range []string{"a", "bc"} {
		rc.writeFrame(0x80|byte(MessageText), []byte(p))
	}
	srv.r.next(t)
	srv.r.next(t)
	if st := srv.c.Stats(); st.MessagesIn != 2 || st.BytesIn != 3 {
		t.Fatalf("in: %+v, want 2 messages, 3 bytes", st)
	}
	for i := range 3 {
		_ = srv.c.Send(NewFrame(MessageText, []byte{byte('x' + i)}))
	}
	for range 2 {
		if _, err := rc.readFrame(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for {
		st := srv.c.Stats()
		if st.MessagesOut+st.Refused == 3 && st.Writes > 0 {
			if st.Frames < st.MessagesOut || st.BytesOut < 3*st.MessagesOut || st.Writes > st.Frames {
				t.Fatalf("out: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("out: %+v, want 3 sends accounted", st)
		}
		time.Sleep(time.Millisecond)
	}
	k1, k2 := NewKeyedFrame(MessageText, []byte("1"), "k"), NewKeyedFrame(MessageText, []byte("2"), "k")
	// Hold the writer off (as if one were running), so that the second
	// keyed frame finds the first still queued and replaces it.
	srv.c.mu.Lock()
	srv.c.writing = true
	srv.c.mu.Unlock()
	_ = srv.c.Send(k1)
	_ = srv.c.Send(k2)
	if st := srv.c.Stats(); st.Conflated != 1 {
		t.Fatalf("conflated %d, want 1", st.Conflated)
	}
	srv.c.mu.Lock()
	srv.c.writing = false
	srv.c.mu.Unlock()
	srv.c.Terminate(nil)
}
