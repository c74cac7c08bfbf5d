package transport

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// blocker blocks in HandleMessage for "block" after handing the reading
// off; it echoes everything else.
type blocker struct {
	handedOff, again chan bool
	release          chan struct{}
	rec              *recorder
	token            atomic.Uint32 // the blocked call's ReadingToken
	stale            chan bool     // HandOffReadingAt with it, from the new reader's call for "a"
}

func (b *blocker) HandleMessage(c *Conn, typ MessageType, data []byte) {
	switch string(data) {
	case "block":
		b.token.Store(c.ReadingToken())
		b.handedOff <- c.HandOffReading()
		b.again <- c.HandOffReading()
		<-b.release
	case "a":
		tok := b.token.Load()
		b.stale <- c.ReadingToken() == tok || c.HandOffReadingAt(tok)
	}
	b.rec.HandleMessage(c, typ, data)
}

func (b *blocker) HandleClose(c *Conn, info CloseInfo) { b.rec.HandleClose(c, info) }

// After HandOffReading a new reader reads on while the old HandleMessage
// blocks: later messages are handled and echoed, pings answered; the old
// call returns to no more reading; the close is reported once. A second
// hand-off in the same call, and one outside HandleMessage, do nothing; nor
// does HandOffReadingAt with the blocked call's token while the new reader
// is inside HandleMessage.
func TestHandOffReading(t *testing.T) {
	for _, idle := range []time.Duration{5 * time.Millisecond, -1} {
		t.Run("IdleReader="+idle.String(), func(t *testing.T) {
			t.Parallel()
			testHandOffReading(t, idle)
		})
	}
}

func testHandOffReading(t *testing.T, idle time.Duration) {
	b := &blocker{handedOff: make(chan bool, 1), again: make(chan bool, 1), release: make(chan struct{}), rec: newRecorder(true),
		stale: make(chan bool, 1)}
	conns := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{IdleReader: idle})
		if err != nil {
			t.Error(err)
			return
		}
		c.Start(b)
		conns <- c
	}))
	defer srv.Close()
	rc := rawDial(t, strings.TrimPrefix(srv.URL, "http://"))
	c := <-conns
	if c.HandOffReading() {
		t.Fatal("handed off with no reader inside HandleMessage")
	}

	rc.writeFrame(0x80|byte(MessageText), []byte("block"))
	if !<-b.handedOff {
		t.Fatal("HandOffReading inside HandleMessage did nothing")
	}
	if <-b.again {
		t.Fatal("a second hand-off in the same HandleMessage started another reader")
	}
	for _, s := range []string{"a", "b"} {
		time.Sleep(20 * time.Millisecond) // several IdleReader periods: the new reader may park and wake
		rc.writeFrame(0x80|byte(MessageText), []byte(s))
		if f, err := rc.readFrame(); err != nil || string(f.payload) != s {
			t.Fatalf("echo of %q while the first message blocks: %q, %v", s, f.payload, err)
		}
		if s == "a" && <-b.stale {
			t.Fatal("the blocked call's token names the new reader's call, or hands its reading off")
		}
	}
	rc.writeFrame(0x80|opPing, []byte("p"))
	if f, err := rc.readFrame(); err != nil || f.op != opPong || string(f.payload) != "p" {
		t.Fatalf("pong: op %d %q, %v", f.op, f.payload, err)
	}
	if !c.ReadPaused().IsZero() {
		t.Fatal("the connection counts as paused after the hand-off")
	}

	close(b.release)
	if f, err := rc.readFrame(); err != nil || string(f.payload) != "block" {
		t.Fatalf("echo of the blocked message: %q, %v", f.payload, err)
	}
	if n := c.Stats().MessagesIn; n != 3 {
		t.Fatalf("MessagesIn %d, want 3", n)
	}
	rc.writeFrame(0x80|opClose, []byte{0x03, 0xe8})
	if code, _, _ := rc.readClose(); code != int(StatusNormalClosure) {
		t.Fatalf("close code %d", code)
	}
	rc.readToEOF()
	if info := b.rec.waitClose(t); info.Code != StatusNormalClosure || !info.ByPeer {
		t.Fatalf("close info %+v", info)
	}
	waitDone(t, c)
	if n := b.rec.closeCalls.Load(); n != 1 {
		t.Fatalf("HandleClose called %d times", n)
	}
}
