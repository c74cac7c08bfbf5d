package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/internal/exampletest"
)

// peer is a Go client of the chat, speaking its JSON protocol.
type peer struct {
	t    *testing.T
	name string
	c    *websocket.Conn
}

func dial(t *testing.T, s *chatServer, name string) *peer {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.DialContext(t.Context(), s.wsURL(), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return &peer{t: t, name: name, c: c}
}

func (p *peer) write(typ int, data []byte) {
	p.t.Helper()
	_ = p.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if err := p.c.WriteMessage(typ, data); err != nil {
		p.t.Fatalf("%s: write: %v", p.name, err)
	}
}

func (p *peer) send(v any) {
	p.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(websocket.TextMessage, data)
}

// next returns the next message, which must be of type typ.
func (p *peer) next(typ string) outbound {
	p.t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, data, err := p.c.ReadMessage()
	if err != nil {
		p.t.Fatalf("%s: waiting for %q: %v", p.name, typ, err)
	}
	var m outbound
	if err := json.Unmarshal(data, &m); err != nil {
		p.t.Fatalf("%s: not JSON: %q", p.name, data)
	}
	if m.Type != typ {
		p.t.Fatalf("%s: got %s, want a %q message", p.name, data, typ)
	}
	return m
}

// until skips messages up to the first of type typ that match accepts.
func (p *peer) until(typ string, match func(outbound) bool) outbound {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		_ = p.c.SetReadDeadline(deadline)
		_, data, err := p.c.ReadMessage()
		if err != nil {
			p.t.Fatalf("%s: waiting for %q: %v", p.name, typ, err)
		}
		var m outbound
		if json.Unmarshal(data, &m) == nil && m.Type == typ && match(m) {
			return m
		}
	}
}

// closed reads until the server's close frame and returns it.
func (p *peer) closed() *websocket.CloseError {
	p.t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		if _, _, err := p.c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				p.t.Fatalf("%s: want a close frame, got %v", p.name, err)
			}
			return ce
		}
	}
}

// join joins room and checks the welcome.
func (p *peer) join(room string) {
	p.t.Helper()
	p.send(inbound{Type: "join", Room: room, Name: p.name})
	w := p.next("welcome")
	if w.Name != p.name || w.Room != strings.ToLower(room) {
		p.t.Fatalf("%s: welcome %+v", p.name, w)
	}
}

func (p *peer) say(text string) {
	p.t.Helper()
	p.send(inbound{Type: "say", Text: text})
}

// presenceIs reads the next message, a presence list that must equal want
// ("name:tabs" entries, sorted by name).
func (p *peer) presenceIs(want ...string) {
	p.t.Helper()
	m := p.next("presence")
	var got []string
	for _, e := range m.Members {
		got = append(got, e.Name+":"+strconv.Itoa(e.Tabs))
	}
	if !reflect.DeepEqual(got, want) {
		p.t.Fatalf("%s: presence %v, want %v", p.name, got, want)
	}
}

func (p *peer) hangUp() {
	p.t.Helper()
	_ = p.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(waitTimeout))
	p.closed()
	_ = p.c.Close()
}

// TestChat: the page is served; two people (one with two tabs) join a room,
// see each other in the presence list and get join/leave notices, and chat.
func TestChat(t *testing.T) {
	s := startChat(t, "127.0.0.1:0")
	defer http.DefaultClient.CloseIdleConnections()
	if page := exampletest.Get(t, s.URL+"/"); !strings.Contains(page, "<title>wsactor chat</title>") {
		t.Fatalf("GET / is not the chat page:\n%s", page)
	}
	if js := exampletest.Get(t, s.URL+"/chat.js"); !strings.Contains(js, "new WebSocket") {
		t.Fatal("GET /chat.js is not the page's script")
	}

	alice := dial(t, s, "alice")
	alice.join("Test-Room") // room names are case-insensitive
	alice.presenceIs("alice:1")

	bob := dial(t, s, "bob")
	bob.join("test-room")
	bob.presenceIs("alice:1", "bob:1")
	if m := alice.next("joined"); m.Name != "bob" || m.Room != "test-room" {
		t.Fatalf("alice got %+v, want bob joined", m)
	}
	alice.presenceIs("alice:1", "bob:1")

	// A second tab of alice's: a presence change, but no "joined".
	alice2 := dial(t, s, "alice")
	alice2.join("test-room")
	alice2.presenceIs("alice:2", "bob:1")
	bob.presenceIs("alice:2", "bob:1")
	alice.presenceIs("alice:2", "bob:1")

	if got := exampletest.Get(t, s.URL+"/rooms"); strings.TrimSpace(got) != `[{"name":"test-room","people":2}]` {
		t.Fatalf("GET /rooms = %s", got)
	}

	alice.say("  hello, bob  ")
	for _, p := range []*peer{bob, alice, alice2} { // everyone, the sender included
		m := p.next("message")
		if m.Name != "alice" || m.Text != "hello, bob" || m.Room != "test-room" || m.Time == 0 {
			t.Fatalf("%s got %+v", p.name, m)
		}
	}

	bob.send(inbound{Type: "ping"})
	bob.next("pong")

	// alice closes one tab, then the other: "left" only for the last.
	alice2.hangUp()
	bob.presenceIs("alice:1", "bob:1")
	alice.presenceIs("alice:1", "bob:1")
	alice.hangUp()
	if m := bob.next("left"); m.Name != "alice" {
		t.Fatalf("bob got %+v, want alice left", m)
	}
	bob.presenceIs("bob:1")
}

// TestChatRefusesBadInput: a client that sends what the protocol does not
// allow gets an error message, or a close with a clear code; a bystander in
// the same room notices nothing.
func TestChatRefusesBadInput(t *testing.T) {
	s := startChat(t, "127.0.0.1:0")
	carol := dial(t, s, "carol")
	carol.join("bad")
	carol.presenceIs("carol:1")

	tests := []struct {
		name      string
		join      bool   // join "bad" first
		send      []byte // a text message, or binary when binary is set
		binary    bool
		times     int    // how often to send it (default once)
		wantError string // an error message containing this
		wantClose int    // or a close with this code
	}{
		{name: "not JSON", send: []byte("hello"), wantClose: websocket.CloseInvalidFramePayloadData},
		{name: "binary", send: []byte(`{"type":"ping"}`), binary: true, wantClose: websocket.CloseInvalidFramePayloadData},
		{name: "over the read limit", send: []byte(`{"type":"say","text":"` + strings.Repeat("x", readLimit) + `"}`), wantClose: websocket.CloseMessageTooBig},
		{name: "unknown type", send: []byte(`{"type":"dance"}`), wantError: `unknown message type "dance"`},
		{name: "say before join", send: []byte(`{"type":"say","text":"hi"}`), wantError: "join a room first"},
		{name: "bad room", send: []byte(`{"type":"join","room":"a/b","name":"x"}`), wantError: "room name"},
		{name: "bad name", send: []byte(`{"type":"join","room":"bad","name":" "}`), wantError: "nickname"},
		{name: "long text", join: true, send: []byte(`{"type":"say","text":"` + strings.Repeat("é", maxText+1) + `"}`), wantError: "message too long"},
		{name: "empty text", join: true, send: []byte(`{"type":"say","text":" "}`), wantError: "empty message"},
		{name: "second join", join: true, send: []byte(`{"type":"join","room":"other","name":"x"}`), wantError: "reconnect to change rooms"},
		{name: "too many refusals", send: []byte(`{"type":"dance"}`), times: maxStrikes, wantClose: websocket.ClosePolicyViolation},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				p := dial(t, s, "mallory")
				if tc.join {
					p.join("bad")
				}
				typ := websocket.TextMessage
				if tc.binary {
					typ = websocket.BinaryMessage
				}
				for range max(tc.times, 1) {
					p.write(typ, tc.send)
				}
				if tc.wantClose != 0 {
					if ce := p.closed(); ce.Code != tc.wantClose || ce.Text == "" {
						t.Fatalf("closed with %d %q, want %d and a reason", ce.Code, ce.Text, tc.wantClose)
					}
					return
				}
				m := p.until("error", func(outbound) bool { return true })
				if !strings.Contains(m.Error, tc.wantError) {
					t.Fatalf("error %q, want one containing %q", m.Error, tc.wantError)
				}
				// Still connected and served.
				p.send(inbound{Type: "ping"})
				p.until("pong", func(outbound) bool { return true })
			})
		}
	})

	carol.say("still here")
	carol.until("message", func(m outbound) bool { return m.Name == "carol" && m.Text == "still here" })
}

// TestChatShutdown: cancelling run's context (SIGINT) closes every page's
// WebSocket with 1001, so the pages reconnect, and run returns nil.
func TestChatShutdown(t *testing.T) {
	s := startChat(t, "127.0.0.1:0")
	dave := dial(t, s, "dave")
	dave.join("lobby")
	// Read while the server shuts down: gorilla answers the close frame,
	// which completes the closing handshake Shutdown waits for.
	closed := make(chan *websocket.CloseError, 1)
	go func() {
		_ = dave.c.SetReadDeadline(time.Now().Add(waitTimeout))
		for {
			if _, _, err := dave.c.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				errors.As(err, &ce)
				closed <- ce
				return
			}
		}
	}()
	if err := s.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if ce := <-closed; ce == nil || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("closed with %v, want 1001", ce)
	}
}
