package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/wsactortest"
)

func TestMain(m *testing.M) { wsactortest.VerifyTestMain(m) }

// msg is any protocol message as a test reads it.
type msg struct {
	T      string                           `json:"t"`
	Ref    uint64                           `json:"ref"`
	Topic  string                           `json:"topic"`
	Event  string                           `json:"event"`
	Data   json.RawMessage                  `json:"data"`
	Status string                           `json:"status"`
	Error  *channel.Error                   `json:"error"`
	Offset uint64                           `json:"offset"`
	Reason string                           `json:"reason"`
	State  map[string]channel.PresenceEntry `json:"state"`
	Joins  map[string]channel.PresenceEntry `json:"joins"`
	Leaves map[string]channel.PresenceEntry `json:"leaves"`
	raw    []byte
}

func (m msg) join(t *testing.T) channel.JoinReply {
	t.Helper()
	if m.T != "reply" || m.Status != "ok" {
		t.Fatalf("want an ok join reply, got %s", m.raw)
	}
	var r channel.JoinReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("join reply data %s: %v", m.Data, err)
	}
	return r
}

// hubEnv is a Hub served on loopback.
type hubEnv struct {
	hub *channel.Hub
	url string
	srv *httptest.Server
}

func newHubEnv(t *testing.T, opts *channel.Options) *hubEnv {
	t.Helper()
	system := actors.NewSystem(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if opts == nil {
		opts = &channel.Options{}
	}
	if opts.Authenticate == nil {
		opts.Authenticate = func(r *http.Request) (channel.Identity, error) {
			u := r.URL.Query().Get("user")
			return channel.Identity{User: u, Meta: map[string]string{"name": strings.ToUpper(u)}}, nil
		}
	}
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	h, err := channel.NewHub(system, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		srv.Close()
	})
	return &hubEnv{hub: h, url: "ws" + strings.TrimPrefix(srv.URL, "http"), srv: srv}
}

type tclient struct {
	t *testing.T
	c *websocket.Conn
}

func (e *hubEnv) dial(t *testing.T, user string) *tclient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{channel.Subprotocol}}
	c, resp, err := d.Dial(e.url+"?user="+user, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != channel.Subprotocol {
		t.Fatalf("subprotocol %q, want %q", got, channel.Subprotocol)
	}
	t.Cleanup(func() { c.Close() })
	return &tclient{t: t, c: c}
}

func (c *tclient) send(v any) {
	c.t.Helper()
	var p []byte
	switch v := v.(type) {
	case string:
		p = []byte(v)
	default:
		var err error
		if p, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.c.WriteMessage(websocket.TextMessage, p); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *tclient) read() msg {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, p, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("a binary message from a JSON server")
	}
	var m msg
	if err := json.Unmarshal(p, &m); err != nil {
		c.t.Fatalf("server sent %q: %v", p, err)
	}
	m.raw = p
	return m
}

// expect reads the next message and checks its type.
func (c *tclient) expect(typ string) msg {
	c.t.Helper()
	m := c.read()
	if m.T != typ {
		c.t.Fatalf("got %s, want a %q message", m.raw, typ)
	}
	return m
}

func (c *tclient) reply(ref uint64) msg {
	c.t.Helper()
	m := c.expect("reply")
	if m.Ref != ref {
		c.t.Fatalf("reply to ref %d, want %d: %s", m.Ref, ref, m.raw)
	}
	return m
}

func (c *tclient) errorReply(ref uint64, code string) msg {
	c.t.Helper()
	m := c.reply(ref)
	if m.Status != "error" || m.Error == nil || m.Error.Code != code {
		c.t.Fatalf("got %s, want error %q", m.raw, code)
	}
	return m
}

func (c *tclient) closeCode() int {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("read until close: %v", err)
		}
	}
}

func (c *tclient) join(ref uint64, topic string, extra map[string]any) channel.JoinReply {
	c.t.Helper()
	m := map[string]any{"t": "join", "ref": ref, "topic": topic}
	for k, v := range extra {
		m[k] = v
	}
	c.send(m)
	return c.reply(ref).join(c.t)
}

func publishing(string) *channel.TopicOptions {
	return &channel.TopicOptions{ClientPublish: true, History: 10}
}

// Two clients in a topic: a push is published to both as the same bytes,
// with an offset, and the pusher gets a reply carrying that offset.
func TestPushPublishesToMembers(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: publishing})
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	ra := a.join(1, "room:1", nil)
	rb := b.join(1, "room:1", nil)
	if ra.Epoch == "" || ra.Epoch != rb.Epoch || ra.Offset != 0 || ra.Recovered || len(ra.History) != 0 {
		t.Fatalf("join replies %+v %+v", ra, rb)
	}
	a.send(`{"t":"push","ref":2,"topic":"room:1","event":"msg","data":{"text":"hi"}}`)
	var evA msg
	for { // the event and the reply, in either order
		m := a.read()
		if m.T == "event" {
			evA = m
			continue
		}
		if m.T != "reply" || m.Ref != 2 || m.Status != "ok" || string(m.Data) != `{"offset":1}` {
			t.Fatalf("push reply %s", m.raw)
		}
		if evA.T == "" {
			evA = a.expect("event")
		}
		break
	}
	evB := b.expect("event")
	if string(evA.raw) != string(evB.raw) {
		t.Fatalf("members got different bytes:\n%s\n%s", evA.raw, evB.raw)
	}
	if evB.Event != "msg" || evB.Offset != 1 || string(evB.Data) != `{"text":"hi"}` || evB.Topic != "room:1" {
		t.Fatalf("event %s", evB.raw)
	}
	// A push without ref is handled and answered with nothing.
	b.send(`{"t":"push","topic":"room:1","event":"msg","data":2}`)
	if m := a.expect("event"); m.Offset != 2 {
		t.Fatalf("event %s", m.raw)
	}
	if m := b.expect("event"); m.Offset != 2 {
		t.Fatalf("event %s", m.raw)
	}
	// The topic's event and a reply from b's own session are not ordered
	// with each other (the topic writes to b directly), so the ping goes
	// after the event is read; the next message must then be its reply.
	b.send(`{"t":"ping","ref":9}`)
	if m := b.reply(9); m.Status != "ok" {
		t.Fatalf("ping %s", m.raw)
	}
}

// History on join, recovery after a reconnect, and each way recovery can
// fail: another epoch, an offset never reached, events no longer kept.
func TestHistoryAndRecovery(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: func(string) *channel.TopicOptions {
		return &channel.TopicOptions{History: 5}
	}})
	ctx := context.Background()
	var last channel.Position
	for i := 1; i <= 3; i++ {
		pos, err := e.hub.Publish(ctx, "news", "item", i)
		if err != nil {
			t.Fatal(err)
		}
		last = pos
	}
	if last.Offset != 3 {
		t.Fatalf("third publish at %+v", last)
	}
	c := e.dial(t, "carol")
	r := c.join(1, "news", map[string]any{"history": 2})
	if r.Offset != 3 || r.Epoch != last.Epoch || len(r.History) != 2 || r.History[0].Offset != 2 || string(r.History[1].Data) != "3" {
		t.Fatalf("join with history 2: %+v", r)
	}
	c.c.Close()
	for i := 4; i <= 6; i++ {
		if _, err := e.hub.Publish(ctx, "news", "item", i); err != nil {
			t.Fatal(err)
		}
	}
	c = e.dial(t, "carol")
	r = c.join(1, "news", map[string]any{"recover": channel.Position{Epoch: last.Epoch, Offset: 3}})
	if !r.Recovered || r.Offset != 6 || len(r.History) != 3 {
		t.Fatalf("recovery: %+v", r)
	}
	for i, h := range r.History {
		if h.Offset != uint64(4+i) || string(h.Data) != fmt.Sprint(4+i) {
			t.Fatalf("recovered event %d: %+v", i, h)
		}
	}
	// Nothing missed: recovered, empty.
	d := e.dial(t, "dan")
	if r := d.join(1, "news", map[string]any{"recover": channel.Position{Epoch: last.Epoch, Offset: 6}}); !r.Recovered || len(r.History) != 0 {
		t.Fatalf("recovery with nothing missed: %+v", r)
	}
	for _, tc := range []struct {
		name   string
		pos    channel.Position
		reason string
	}{
		{"another epoch", channel.Position{Epoch: "old", Offset: 5}, channel.ReasonEpoch},
		{"a future offset", channel.Position{Epoch: last.Epoch, Offset: 99}, channel.ReasonAhead},
		{"expired", channel.Position{Epoch: last.Epoch, Offset: 0}, channel.ReasonExpired},
	} {
		c := e.dial(t, "eve")
		r := c.join(1, "news", map[string]any{"recover": tc.pos, "history": 1})
		if r.Recovered || r.Reason != tc.reason || len(r.History) != 1 || r.History[0].Offset != 6 {
			t.Errorf("%s: %+v, want recovered false, reason %q, the last event", tc.name, r, tc.reason)
		}
	}
}

// Presence: a snapshot on join, then diffs; two tabs of one user are one
// key with two metas.
func TestPresence(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: func(string) *channel.TopicOptions {
		return &channel.TopicOptions{Presence: true}
	}})
	a1 := e.dial(t, "alice")
	a1.join(1, "lobby", nil)
	st := a1.expect("presence_state")
	if len(st.State) != 1 || len(st.State["alice"].Metas) != 1 || string(st.State["alice"].Metas[0].Meta) != `{"name":"ALICE"}` {
		t.Fatalf("first state %s", st.raw)
	}
	a2 := e.dial(t, "alice")
	a2.join(1, "lobby", nil)
	if st := a2.expect("presence_state"); len(st.State) != 1 || len(st.State["alice"].Metas) != 2 {
		t.Fatalf("second tab's state %s", st.raw)
	}
	if d := a1.expect("presence_diff"); len(d.Joins["alice"].Metas) != 1 || len(d.Leaves) != 0 {
		t.Fatalf("diff for the second tab %s", d.raw)
	}
	b := e.dial(t, "bob")
	b.join(1, "lobby", nil)
	if st := b.expect("presence_state"); len(st.State) != 2 {
		t.Fatalf("bob's state %s", st.raw)
	}
	a1.expect("presence_diff")
	a2.expect("presence_diff")
	a2.c.Close()
	for _, c := range []*tclient{a1, b} {
		d := c.expect("presence_diff")
		if len(d.Leaves["alice"].Metas) != 1 || len(d.Joins) != 0 {
			t.Fatalf("leave diff %s", d.raw)
		}
	}
}
