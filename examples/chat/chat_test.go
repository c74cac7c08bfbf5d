package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/internal/exampletest"
	"github.com/wsactor/wsactor/supervisor"
)

// member is a Go client of the chat in one room: what the page does, with
// channel.Dial instead of the browser client.
type member struct {
	t        *testing.T
	name     string
	c        *channel.Client
	sub      *channel.Subscription
	events   chan channel.Event
	presence chan []channel.PresenceKey
	rejoins  chan *channel.JoinReply
}

// connect dials the chat as name and joins room, asking for its history.
// The client reconnects by itself (quickly, for the tests) and is closed at
// the end of the test.
func connect(t *testing.T, system *actor.ActorSystem, s *chatServer, name, room string) (*member, *channel.JoinReply) {
	t.Helper()
	m := &member{
		t: t, name: name,
		events:   make(chan channel.Event, 256),
		presence: make(chan []channel.PresenceKey, 256),
		rejoins:  make(chan *channel.JoinReply, 16),
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	c, err := channel.Dial(ctx, system, s.wsURL()+"?name="+url.QueryEscape(name), &channel.ClientOptions{
		DialOptions: actors.DialOptions{
			Logger:    zerolog.Nop(),
			Reconnect: &actors.ReconnectOptions{Backoff: supervisor.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}},
		},
	})
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	m.c = c
	t.Cleanup(func() { _ = c.Close() })
	sub, reply, err := c.Join(ctx, "room:"+room, &channel.JoinOptions{
		History:        history,
		Handler:        func(e channel.Event) { m.events <- e },
		OnPresenceSync: func(list []channel.PresenceKey) { m.presence <- list },
		OnRejoin: func(r *channel.JoinReply, err error) {
			if err != nil {
				t.Errorf("%s: rejoin: %v", name, err)
				return
			}
			m.rejoins <- r
		},
	})
	if err != nil {
		t.Fatalf("%s: join %s: %v", name, room, err)
	}
	m.sub = sub
	return m, reply
}

// say pushes a chat message and returns the reply's offset, or the error.
func (m *member) say(text string) (uint64, error) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(m.t.Context(), waitTimeout)
	defer cancel()
	reply, err := m.sub.Push(ctx, "msg", map[string]string{"text": text})
	if err != nil {
		return 0, err
	}
	var r struct{ Offset uint64 }
	if err := json.Unmarshal(reply.Data, &r); err != nil || r.Offset == 0 {
		m.t.Fatalf("%s: reply %s, want an offset", m.name, reply.Data)
	}
	return r.Offset, nil
}

// next returns the next chat message the member received.
func (m *member) next() (message, channel.Event) {
	m.t.Helper()
	select {
	case e := <-m.events:
		var msg message
		if e.Event != "msg" || json.Unmarshal(e.Data, &msg) != nil {
			m.t.Fatalf("%s: got %s %s, want a msg", m.name, e.Event, e.Data)
		}
		return msg, e
	case <-time.After(waitTimeout):
		m.t.Fatalf("%s: no message", m.name)
		panic("unreachable")
	}
}

// gets checks that the next message is text from "from" at offset.
func (m *member) gets(from, text string, offset uint64) {
	m.t.Helper()
	msg, e := m.next()
	if msg.From != from || msg.Text != text || msg.Time == 0 || e.Offset != offset {
		m.t.Fatalf("%s: got %+v at offset %d, want %q from %s at offset %d", m.name, msg, e.Offset, text, from, offset)
	}
}

// quiet checks that no event is waiting.
func (m *member) quiet() {
	m.t.Helper()
	select {
	case e := <-m.events:
		m.t.Fatalf("%s: unexpected event %s %s (offset %d)", m.name, e.Event, e.Data, e.Offset)
	default:
	}
}

// presenceIs waits until the member's presence list is want ("name:tabs",
// sorted by name).
func (m *member) presenceIs(want ...string) {
	m.t.Helper()
	var got []string
	deadline := time.After(waitTimeout)
	for {
		select {
		case list := <-m.presence:
			got = got[:0]
			for _, k := range list {
				got = append(got, k.Key+":"+strconv.Itoa(len(k.Metas)))
			}
			if reflect.DeepEqual(got, want) {
				return
			}
		case <-deadline:
			m.t.Fatalf("%s: presence %v, want %v", m.name, got, want)
		}
	}
}

// rejoined waits for the client's automatic rejoin after a reconnect.
func (m *member) rejoined() *channel.JoinReply {
	m.t.Helper()
	select {
	case r := <-m.rejoins:
		return r
	case <-time.After(waitTimeout):
		m.t.Fatalf("%s: did not rejoin", m.name)
		panic("unreachable")
	}
}

func newSystem() *actor.ActorSystem { return actors.NewSystem(zerolog.Nop()) }

// TestChat: the page and the browser client are served; two people (one
// with two tabs) join a room, get its history, see each other in the
// presence list, and chat.
func TestChat(t *testing.T) {
	s := startChat(t, "127.0.0.1:0", t.TempDir())
	defer http.DefaultClient.CloseIdleConnections()
	if page := exampletest.Get(t, s.URL+"/"); !strings.Contains(page, "<title>wsactor chat</title>") || !strings.Contains(page, `type="module"`) {
		t.Fatalf("GET / is not the chat page:\n%s", page)
	}
	if js := exampletest.Get(t, s.URL+"/chat.js"); !strings.Contains(js, "from '/wsactor/wsactor-channel.js'") {
		t.Fatal("GET /chat.js is not the page's script")
	}
	if js := exampletest.Get(t, s.URL+"/wsactor/wsactor-channel.js"); !strings.Contains(js, "export class Socket") {
		t.Fatal("GET /wsactor/wsactor-channel.js is not the browser client")
	}
	system := newSystem()

	alice, reply := connect(t, system, s, "alice", "test-room")
	if reply.Offset != 0 || len(reply.History) != 0 || reply.Recovered {
		t.Fatalf("alice's join: %+v, want an empty room", reply)
	}
	alice.presenceIs("alice:1")
	if off, err := alice.say("  hello, room  "); err != nil || off != 1 {
		t.Fatalf("alice says: offset %d, %v", off, err)
	}
	alice.gets("alice", "hello, room", 1) // trimmed, stamped with her name

	// bob joins later and gets what was said before him.
	bob, reply := connect(t, system, s, "bob", "test-room")
	if reply.Offset != 1 || len(reply.History) != 1 || reply.History[0].Offset != 1 {
		t.Fatalf("bob's join: %+v, want the one message as history", reply)
	}
	if _, e := bob.next(); !e.Replayed || e.Offset != 1 {
		t.Fatalf("bob's first event %+v, want the history's message", e)
	}
	bob.presenceIs("alice:1", "bob:1")
	alice.presenceIs("alice:1", "bob:1")

	// A second tab of alice's: one more meta under her nickname.
	alice2, _ := connect(t, system, s, "alice", "test-room")
	alice2.next() // the history
	for _, m := range []*member{alice, alice2, bob} {
		m.presenceIs("alice:2", "bob:1")
	}
	roomsAre(t, s.URL, `[{"name":"test-room","people":2}]`)

	if _, err := bob.say("hi alice"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, alice2, bob} { // everyone, the sender included
		m.gets("bob", "hi alice", 2)
		m.quiet()
	}

	// alice closes one tab, then the other.
	_ = alice2.c.Close()
	bob.presenceIs("alice:1", "bob:1")
	_ = alice.c.Close()
	bob.presenceIs("bob:1")
	roomsAre(t, s.URL, `[{"name":"test-room","people":1}]`)
}

// roomsAre waits until GET /rooms answers want. The counts follow the
// rooms' Joined and Left, which a room handles after it has sent the
// presence diff the members see, so a member's view can be ahead of /rooms
// by one message of the room's.
func roomsAre(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := strings.TrimSpace(exampletest.Get(t, url+"/rooms"))
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /rooms = %s, want %s", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChatRefusesBadInput: what the chat does not accept gets an error
// reply with a clear code, and the connection stays; a nickname out of the
// rules is refused at the handshake, a message over the read limit closes
// the connection (1009). A bystander in the room notices nothing.
func TestChatRefusesBadInput(t *testing.T) {
	s := startChat(t, "127.0.0.1:0", t.TempDir())
	system := newSystem()
	carol, _ := connect(t, system, s, "carol", "bad")
	mallory, _ := connect(t, system, s, "mallory", "bad")

	joins := []struct{ topic, code string }{
		{"lobby", codeUnknownTopic},
		{"chat:lobby", codeUnknownTopic},
		{"room:", codeBadRoom},
		{"room:a/b", codeBadRoom},
		{"room:Upper", codeBadRoom},
		{"room:" + strings.Repeat("x", maxRoom+1), codeBadRoom},
	}
	for _, tc := range joins {
		t.Run("join "+tc.topic, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			_, _, err := mallory.c.Join(ctx, tc.topic, nil)
			var e *channel.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Message == "" {
				t.Fatalf("join %q: %v, want an error reply %q with a message", tc.topic, err, tc.code)
			}
		})
	}

	pushes := []struct {
		name, event string
		data        any
		code        string
	}{
		{"empty text", "msg", map[string]string{"text": "   "}, codeEmpty},
		{"no text", "msg", map[string]string{}, codeEmpty},
		{"long text", "msg", map[string]string{"text": strings.Repeat("é", maxText+1)}, codeTooLong},
		{"not an object", "msg", "hello", channel.CodeBadRequest},
		{"unknown event", "dance", nil, codeUnknownEvent},
	}
	for _, tc := range pushes {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			_, err := mallory.sub.Push(ctx, tc.event, tc.data)
			var e *channel.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Message == "" {
				t.Fatalf("push %s %v: %v, want an error reply %q with a message", tc.event, tc.data, err, tc.code)
			}
		})
	}
	// The longest message there may be is fine.
	if _, err := mallory.say(strings.Repeat("é", maxText)); err != nil {
		t.Fatalf("a message of %d characters: %v", maxText, err)
	}
	carol.gets("mallory", strings.Repeat("é", maxText), 1)

	for _, name := range []string{"", "   ", strings.Repeat("n", maxName+1), "tab\there"} {
		t.Run(fmt.Sprintf("nickname %q", name), func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: []string{channel.Subprotocol}}
			c, resp, err := d.DialContext(t.Context(), s.wsURL()+"?name="+url.QueryEscape(name), nil)
			if err == nil {
				_ = c.Close()
				t.Fatal("the handshake succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("handshake: %v, want 400", err)
			}
			_ = resp.Body.Close()
		})
	}

	t.Run("over the read limit", func(t *testing.T) {
		c := dialRaw(t, s, "mallory")
		join(t, c, "room:bad", nil)
		msg := fmt.Sprintf(`{"t":"push","ref":2,"topic":"room:bad","event":"msg","data":{"text":%q}}`, strings.Repeat("x", readLimit))
		_ = c.SetWriteDeadline(time.Now().Add(waitTimeout))
		_ = c.WriteMessage(websocket.TextMessage, []byte(msg))
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		for {
			_, _, err := c.ReadMessage()
			if err == nil {
				continue // presence
			}
			if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Fatalf("read: %v, want a close with 1009", err)
			}
			return
		}
	})

	// mallory is still connected and served; carol saw nothing of it.
	if _, err := mallory.say("sorry"); err != nil {
		t.Fatal(err)
	}
	carol.gets("mallory", "sorry", 2)
	carol.quiet()
}

// TestChatRestartKeepsHistory: with -data, a room's history outlives the
// process. alice's client stays through a restart of the server on the same
// port and recovers; bob, away during the restart, comes back with his
// position and gets exactly what he missed; a newcomer gets everything.
func TestChatRestartKeepsHistory(t *testing.T) {
	data := t.TempDir()
	s1 := startChat(t, "127.0.0.1:0", data)
	system := newSystem()
	alice, _ := connect(t, system, s1, "alice", "keep")
	for i, text := range []string{"one", "two"} {
		if _, err := alice.say(text); err != nil {
			t.Fatal(err)
		}
		alice.gets("alice", text, uint64(i+1))
	}
	bob := dialRaw(t, s1, "bob")
	seen := join(t, bob, "room:keep", nil)
	_ = bob.Close() // bob leaves at offset 2

	if err := s1.Stop(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	s2 := startChat(t, s1.Addr, data)

	r := alice.rejoined()
	if !r.Recovered || r.Epoch != seen.Epoch || r.Offset != 2 || len(r.History) != 0 {
		t.Fatalf("alice's rejoin: %+v, want recovered in epoch %s at offset 2, nothing missed", r, seen.Epoch)
	}
	if _, err := alice.say("three"); err != nil {
		t.Fatal(err)
	}
	alice.gets("alice", "three", 3)
	alice.quiet()

	bob = dialRaw(t, s2, "bob")
	back := join(t, bob, "room:keep", &channel.Position{Epoch: seen.Epoch, Offset: seen.Offset})
	if !back.Recovered || back.Epoch != seen.Epoch || len(back.History) != 1 || back.History[0].Offset != 3 {
		t.Fatalf("bob's recovery: %+v, want recovered with only offset 3", back)
	}
	var missed message
	if err := json.Unmarshal(back.History[0].Data, &missed); err != nil || missed.Text != "three" || missed.From != "alice" {
		t.Fatalf("bob missed %s, want alice's three", back.History[0].Data)
	}

	carol, reply := connect(t, system, s2, "carol", "keep")
	if reply.Epoch != seen.Epoch || len(reply.History) != 3 {
		t.Fatalf("carol's join: %+v, want the three messages", reply)
	}
	for i, text := range []string{"one", "two", "three"} {
		carol.gets("alice", text, uint64(i+1))
	}
}

// TestChatRestartWithoutData: with -data "", history lives in memory, and a
// restart starts every room anew: a client coming back is told it cannot
// recover (reason "epoch") rather than silently missing messages.
func TestChatRestartWithoutData(t *testing.T) {
	s1 := startChat(t, "127.0.0.1:0", "")
	bob := dialRaw(t, s1, "bob")
	say(t, bob, "room:gone", "soon forgotten")
	carol := dialRaw(t, s1, "carol")
	seen := join(t, carol, "room:gone", nil)
	if seen.Offset != 1 {
		t.Fatalf("carol's join: %+v, want offset 1", seen)
	}
	_, _ = bob.Close(), carol.Close() // gone before the restart: nobody reads to answer its close
	if err := s1.Stop(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	s2 := startChat(t, s1.Addr, "")
	back := join(t, dialRaw(t, s2, "carol"), "room:gone", &channel.Position{Epoch: seen.Epoch, Offset: seen.Offset})
	if back.Recovered || back.Reason != channel.ReasonEpoch || back.Epoch == seen.Epoch {
		t.Fatalf("carol's recovery: %+v, want not recovered, reason epoch", back)
	}
}

// TestChatShutdown: cancelling run's context (SIGINT) closes every page's
// WebSocket with 1001, so the pages reconnect, and run returns nil.
func TestChatShutdown(t *testing.T) {
	s := startChat(t, "127.0.0.1:0", t.TempDir())
	dave := dialRaw(t, s, "dave")
	join(t, dave, "room:lobby", nil)
	// Read while the server shuts down: gorilla answers the close frame,
	// which completes the closing handshake Shutdown waits for.
	closed := make(chan *websocket.CloseError, 1)
	go func() {
		_ = dave.SetReadDeadline(time.Now().Add(waitTimeout))
		for {
			if _, _, err := dave.ReadMessage(); err != nil {
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

// dialRaw connects to the chat as name with a plain WebSocket client: the
// channels protocol is JSON text messages, one per WebSocket message.
func dialRaw(t *testing.T, s *chatServer, name string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{channel.Subprotocol}}
	c, resp, err := d.DialContext(t.Context(), s.wsURL()+"?name="+url.QueryEscape(name), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// join sends a join (ref 1) of topic, recovering from pos if not nil, and
// returns its reply's data.
func join(t *testing.T, c *websocket.Conn, topic string, pos *channel.Position) channel.JoinReply {
	t.Helper()
	req := map[string]any{"t": "join", "ref": 1, "topic": topic, "history": history}
	if pos != nil {
		req["recover"] = pos
	}
	var r struct {
		Status string
		Data   channel.JoinReply
		Error  *channel.Error
	}
	call(t, c, req, 1, &r)
	if r.Status != "ok" {
		t.Fatalf("join %s: %s %v", topic, r.Status, r.Error)
	}
	return r.Data
}

// say joins topic and pushes one message (ref 2) to it.
func say(t *testing.T, c *websocket.Conn, topic, text string) {
	t.Helper()
	join(t, c, topic, nil)
	var r struct{ Status string }
	call(t, c, map[string]any{"t": "push", "ref": 2, "topic": topic, "event": "msg", "data": map[string]string{"text": text}}, 2, &r)
	if r.Status != "ok" {
		t.Fatalf("push to %s: %s", topic, r.Status)
	}
}

// call writes req and reads until the reply with ref, decoded into v.
func call(t *testing.T, c *websocket.Conn, req any, ref int, v any) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if err := c.WriteJSON(req); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for reply %d: %v", ref, err)
		}
		var m struct {
			T   string
			Ref int
		}
		if json.Unmarshal(p, &m) == nil && m.T == "reply" && m.Ref == ref {
			if err := json.Unmarshal(p, v); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}
