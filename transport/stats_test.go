package transport

import (
	"bytes"
	"strings"
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
	// keyed frame finds the first still queued and replaces it. The last
	// writer must have stopped first: one still looping could take k1.
	pollUntil(t, "the writer to stop", func() bool {
		srv.c.mu.Lock()
		defer srv.c.mu.Unlock()
		if srv.c.writing {
			return false
		}
		srv.c.writing = true
		return true
	})
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

// With permessage-deflate the counters tell payload from wire: a
// compressible message counts its full size as payload and its compressed
// size on the wire, each way.
func TestConnStatsCompressed(t *testing.T) {
	s := startServer(t, serverConfig{opts: &AcceptOptions{Compression: CompressionEnabled}})
	rc := rawDial(t, s.addr(), deflateOfferHeader)
	srv := s.next(t)
	text := []byte(strings.Repeat("compressible ", 200)) // 2,600 bytes, over the 1 KiB threshold
	z := deflateMessage(t, text)
	rc.writeFrame(0x80|0x40|byte(MessageText), z)
	if m := srv.r.next(t); !bytes.Equal(m.data, text) {
		t.Fatal("inflated message differs")
	}
	if st := srv.c.Stats(); st.BytesIn != uint64(len(text)) || st.WireBytesIn != uint64(len(z)) {
		t.Fatalf("in: %+v, want %d payload and %d wire bytes", st, len(text), len(z))
	}
	_ = srv.c.Send(NewFrame(MessageText, text))
	f, err := rc.readFrame()
	if err != nil || !f.rsv1 {
		t.Fatalf("frame %+v, %v: want a compressed frame", f, err)
	}
	pollUntil(t, "the write counted", func() bool { return srv.c.Stats().MessagesOut == 1 })
	st := srv.c.Stats()
	header := 2
	if len(f.payload) > 125 {
		header = 4
	}
	if st.PayloadBytesOut != uint64(len(text)) || st.BytesOut != uint64(len(f.payload)+header) {
		t.Fatalf("out: %+v, want %d payload bytes and %d on the wire", st, len(text), len(f.payload)+header)
	}
	srv.c.Terminate(nil)
}

// Each overflow policy's answers are counted as its own: refusals,
// evictions, and the send that closed the connection with 1013.
func TestConnStatsOverflowPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy                           OverflowPolicy
		refused, evicted, overflowCloses uint64
	}{
		{OverflowDropNewest, 2, 0, 0},
		{OverflowDropOldest, 2, 2, 0},
		{OverflowDisconnect, 1, 0, 1}, // the third send finds the connection closing
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			s := startServer(t, serverConfig{opts: &AcceptOptions{QueueMessages: 1, Overflow: tc.policy}})
			rawDial(t, s.addr())
			srv := s.next(t)
			srv.c.mu.Lock()
			srv.c.writing = true // as if a writer were busy: the queue holds
			srv.c.mu.Unlock()
			for i := range 3 {
				_ = srv.c.Send(NewFrame(MessageText, []byte{byte('a' + i)}))
			}
			st := srv.c.Stats()
			if st.Refused != tc.refused || st.Evicted != tc.evicted || st.OverflowCloses != tc.overflowCloses {
				t.Fatalf("%+v, want refused %d, evicted %d, overflow closes %d", st, tc.refused, tc.evicted, tc.overflowCloses)
			}
			srv.c.mu.Lock()
			srv.c.writing = false
			srv.c.mu.Unlock()
			srv.c.Terminate(nil)
		})
	}
}
