package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/supervisor"
)

// Every malformed or refused request gets an error reply with its code,
// and the connection, its memberships and the other clients carry on.
func TestBadRequestsGetErrorReplies(t *testing.T) {
	e := newHubEnv(t, &channel.Options{
		Topics:    publishing,
		MaxTopics: 2,
		Authorize: func(j *channel.JoinRequest) (channel.Authorization, error) {
			switch {
			case strings.HasPrefix(j.Topic, "private:"):
				return channel.Authorization{}, channel.Errorf("forbidden", "%s is private", j.Topic)
			case strings.HasPrefix(j.Topic, "vip:"):
				return channel.Authorization{}, errSomething
			}
			return channel.Authorization{Reply: map[string]string{"welcome": j.Member.User}}, nil
		},
	})
	c, other := e.dial(t, "mallory"), e.dial(t, "olive")
	if r := c.join(1, "room:1", nil); string(r.Reply) != `{"welcome":"mallory"}` {
		t.Fatalf("join reply %+v", r)
	}
	other.join(1, "room:1", nil)

	cases := []struct {
		name, send string
		ref        uint64
		code       string
	}{
		{"not JSON", `hello`, 0, "bad_request"},
		{"not an object", `[1,2]`, 0, "bad_request"},
		{"no type", `{"ref":5}`, 5, "bad_request"},
		{"unknown type", `{"t":"subscribe","ref":6,"topic":"x"}`, 6, "bad_request"},
		{"ref of the wrong type", `{"t":"join","ref":"7","topic":"x"}`, 0, "bad_request"},
		{"negative ref", `{"t":"join","ref":-1,"topic":"x"}`, 0, "bad_request"},
		{"join without topic", `{"t":"join","ref":8}`, 8, "bad_request"},
		{"join without ref", `{"t":"join","topic":"x"}`, 0, "bad_request"},
		{"push to nowhere without ref", `{"t":"push","topic":"room:9","event":"x"}`, 0, ""},
		{"topic with a control character", `{"t":"join","ref":9,"topic":"a\u0001b"}`, 9, "bad_request"},
		{"overlong topic", `{"t":"join","ref":10,"topic":"` + strings.Repeat("x", 256) + `"}`, 10, "bad_request"},
		{"push without event", `{"t":"push","ref":11,"topic":"room:1"}`, 11, "bad_request"},
		{"reserved event name", `{"t":"push","ref":18,"topic":"room:1","event":"wsactor.x"}`, 18, "bad_request"},
		{"a server-only message", `{"t":"event","ref":12,"topic":"room:1","event":"x"}`, 12, "bad_request"},
		{"push before join", `{"t":"push","ref":13,"topic":"room:2","event":"msg"}`, 13, "not_joined"},
		{"leave before join", `{"t":"leave","ref":14,"topic":"room:2"}`, 14, "not_joined"},
		{"join twice", `{"t":"join","ref":15,"topic":"room:1"}`, 15, "already_joined"},
		{"refused by Authorize with a code", `{"t":"join","ref":16,"topic":"private:x"}`, 16, "forbidden"},
		{"refused by Authorize", `{"t":"join","ref":17,"topic":"vip:x"}`, 17, "unauthorized"},
	}
	for _, tc := range cases {
		c.send(tc.send)
		if tc.code == "" { // no answer expected: the next case's answer comes first
			continue
		}
		m := c.read()
		if m.T != "reply" || m.Ref != tc.ref || m.Status != "error" || m.Error == nil || m.Error.Code != tc.code || m.Error.Message == "" {
			t.Errorf("%s: got %s, want an error reply %q to ref %d", tc.name, m.raw, tc.code, tc.ref)
		}
	}
	// Still connected, still a member, and the other client saw nothing.
	c.join(20, "room:2", nil)
	c.send(`{"t":"join","ref":21,"topic":"room:3"}`)
	c.errorReply(21, "too_many_topics")
	c.send(`{"t":"push","ref":22,"topic":"room:1","event":"msg","data":"still here"}`)
	if m := other.expect("event"); string(m.Data) != `"still here"` {
		t.Fatalf("other got %s", m.raw)
	}
}

var errSomething = &json.SyntaxError{} // any error that is not a *channel.Error

// A binary message on a JSON connection closes it with 1003; a flood of
// malformed messages with 4400. Other connections stay.
func TestProtocolViolationsClose(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: publishing, AbuseLimit: 5})
	bystander := e.dial(t, "bob")
	bystander.join(1, "room:1", nil)

	c := e.dial(t, "mallory")
	if err := c.c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if code := c.closeCode(); code != 1003 {
		t.Fatalf("binary message: close %d, want 1003", code)
	}

	c = e.dial(t, "mallory")
	for range 5 {
		c.send(`{nope`)
	}
	for range 5 {
		c.errorReply(0, "bad_request")
	}
	if code := c.closeCode(); code != int(channel.StatusMalformed) {
		t.Fatalf("malformed flood: close %d, want 4400", code)
	}

	bystander.send(`{"t":"ping","ref":2}`)
	bystander.reply(2)
}

// A connection past its rate gets rate_limited with retry_after, and is
// closed with 4429 once refused AbuseLimit times in a minute. A join/leave
// flood is one of the ways to get there.
func TestRateLimits(t *testing.T) {
	e := newHubEnv(t, &channel.Options{
		Topics:     publishing,
		Rate:       channel.Limit{Rate: 0.001, Burst: 4},
		AbuseLimit: 3,
	})
	c := e.dial(t, "mallory")
	c.join(1, "room:1", nil)
	c.send(`{"t":"leave","ref":2,"topic":"room:1"}`)
	if m := c.reply(2); m.Status != "ok" {
		t.Fatalf("leave right after the join: %s", m.raw)
	}
	c.join(3, "room:1", nil)
	c.send(`{"t":"leave","ref":4,"topic":"room:1"}`)
	if m := c.reply(4); m.Status != "ok" {
		t.Fatalf("leave: %s", m.raw)
	}
	for ref := uint64(5); ref <= 6; ref++ {
		c.send(map[string]any{"t": "join", "ref": ref, "topic": "room:1"})
		if m := c.errorReply(ref, "rate_limited"); m.Error.RetryAfter <= 0 {
			t.Fatalf("rate_limited without retry_after: %s", m.raw)
		}
	}
	c.send(`{"t":"join","ref":7,"topic":"room:1"}`)
	c.errorReply(7, "rate_limited")
	if code := c.closeCode(); code != int(channel.StatusRateAbuse) {
		t.Fatalf("close %d, want 4429", code)
	}
	// Another connection of another user has its own budget.
	d := e.dial(t, "dave")
	d.join(1, "room:1", nil)
}

// The per-user budget is shared by the user's connections.
func TestUserRateShared(t *testing.T) {
	e := newHubEnv(t, &channel.Options{
		Topics:     publishing,
		UserRate:   channel.Limit{Rate: 0.001, Burst: 3},
		AbuseLimit: -1,
	})
	a1, a2 := e.dial(t, "alice"), e.dial(t, "alice")
	a1.join(1, "t1", nil)
	a2.join(1, "t1", nil)
	a1.join(2, "t2", nil)
	a2.send(`{"t":"join","ref":2,"topic":"t2"}`)
	a2.errorReply(2, "rate_limited")
	b := e.dial(t, "bob")
	b.join(1, "t2", nil)
}

// chatty is a topic behaviour: "echo" replies with the data, "boom"
// panics, "later" is never answered, "kick" removes the sender.
type chatty struct{ t *channel.Topic }

func (c *chatty) Receive(ctx actor.Context) {
	if p, ok := ctx.Message().(*channel.Push); ok {
		switch p.Event {
		case "echo":
			p.Reply(p.Data)
		case "boom":
			panic("handler bug")
		case "later":
			p.Defer()
		case "kick":
			c.t.Remove(p.From.ID)
		case "refuse":
			p.Fail(channel.Errorf("nope", "refused"))
		}
	}
}

// A topic's behaviour answers pushes; its panic is an "internal" reply,
// an unanswered deferred push a "timeout", and the connection stays.
func TestTopicHandler(t *testing.T) {
	e := newHubEnv(t, &channel.Options{
		PushTimeout: 200 * time.Millisecond,
		Topics: func(name string) *channel.TopicOptions {
			return &channel.TopicOptions{Handler: func(t *channel.Topic) actor.Actor { return &chatty{t: t} }}
		},
	})
	c := e.dial(t, "alice")
	c.join(1, "game:1", nil)
	c.send(`{"t":"push","ref":2,"topic":"game:1","event":"echo","data":{"x":1}}`)
	if m := c.reply(2); m.Status != "ok" || string(m.Data) != `{"x":1}` {
		t.Fatalf("echo %s", m.raw)
	}
	c.send(`{"t":"push","ref":3,"topic":"game:1","event":"boom"}`)
	c.errorReply(3, "internal")
	c.send(`{"t":"push","ref":4,"topic":"game:1","event":"refuse"}`)
	c.errorReply(4, "nope")
	c.send(`{"t":"push","ref":5,"topic":"game:1","event":"other"}`)
	if m := c.reply(5); m.Status != "ok" || len(m.Data) != 0 {
		t.Fatalf("an unanswered push is answered ok: %s", m.raw)
	}
	c.send(`{"t":"push","ref":6,"topic":"game:1","event":"later"}`)
	c.errorReply(6, "timeout")
	c.send(`{"t":"push","ref":7,"topic":"game:1","event":"kick"}`)
	if m := c.expect("left"); m.Topic != "game:1" || m.Reason != "removed" {
		t.Fatalf("kick %s", m.raw)
	}
	c.reply(7)
	c.send(`{"t":"push","ref":8,"topic":"game:1","event":"echo"}`)
	c.errorReply(8, "not_joined")

	// A topic without handler and without ClientPublish refuses pushes.
	e2 := newHubEnv(t, nil)
	d := e2.dial(t, "dan")
	d.join(1, "quiet", nil)
	d.send(`{"t":"push","ref":2,"topic":"quiet","event":"x"}`)
	d.errorReply(2, "no_handler")
}

// The user index: SendUser reaches every connection of a user, Sessions
// lists them, Request waits for the client's reply, DisconnectUser closes
// them with 1008.
func TestUserIndex(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: publishing})
	a1, a2, b := e.dial(t, "alice"), e.dial(t, "alice"), e.dial(t, "bob")
	a1.join(1, "room:1", nil)
	b.join(1, "room:1", nil)
	waitFor(t, "alice's two sessions", func() bool { return len(e.hub.Sessions("alice")) == 2 })
	ss := e.hub.Sessions("alice")
	if ss[0].User != "alice" || ss[0].ID == ss[1].ID {
		t.Fatalf("sessions %+v", ss)
	}
	n, err := e.hub.SendUser("alice", "user:alice", "notice", map[string]int{"unread": 3})
	if err != nil || n != 2 {
		t.Fatalf("SendUser: %d, %v", n, err)
	}
	for _, c := range []*tclient{a1, a2} {
		if m := c.expect("push"); m.Event != "notice" || m.Ref != 0 || string(m.Data) != `{"unread":3}` {
			t.Fatalf("push %s", m.raw)
		}
	}

	// The session lists a topic once it has the room's answer, which may
	// come just after the client has its join reply (the topic sends it).
	var a1ID string
	waitFor(t, "a session of alice listing room:1", func() bool {
		for _, s := range e.hub.Sessions("alice") {
			if len(s.Topics) == 1 && s.Topics[0] == "room:1" {
				a1ID = s.ID
			}
		}
		return a1ID != ""
	})
	got := make(chan error, 1)
	var answer *channel.Reply
	go func() {
		var err error
		answer, err = e.hub.Request(context.Background(), a1ID, "user:alice", "confirm", "ok?")
		got <- err
	}()
	m := a1.expect("push")
	if m.Ref == 0 || m.Event != "confirm" {
		t.Fatalf("request push %s", m.raw)
	}
	a1.send(map[string]any{"t": "reply", "ref": m.Ref, "status": "ok", "data": "yes"})
	if err := <-got; err != nil || string(answer.Data) != `"yes"` || answer.Bin != nil {
		t.Fatalf("Request: %+v, %v", answer, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.hub.Request(ctx, a1ID, "user:alice", "confirm", nil); err == nil {
		t.Fatal("Request unanswered: no error")
	}
	a1.expect("push")

	if n := e.hub.DisconnectUser("alice", "account suspended"); n != 2 {
		t.Fatalf("DisconnectUser: %d", n)
	}
	for _, c := range []*tclient{a1, a2} {
		if code := c.closeCode(); code != 1008 {
			t.Fatalf("disconnected with %d, want 1008", code)
		}
	}
	b.send(`{"t":"ping","ref":2}`)
	b.reply(2)
	waitFor(t, "alice gone from the index", func() bool { return len(e.hub.Sessions("alice")) == 0 })
}

// Shutdown closes the connections and keeps the topics; after Reopen a
// client recovers what was published while it was away.
func TestShutdownKeepsHistory(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: publishing})
	c := e.dial(t, "alice")
	r := c.join(1, "room:1", nil)
	c.send(`{"t":"push","ref":2,"topic":"room:1","event":"msg","data":1}`)
	c.expect("event")
	c.reply(2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := make(chan int, 1)
	go func() { // answer the close handshake while Shutdown waits for it
		_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, _, err := c.c.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code <- ce.Code
				return
			} else if err != nil {
				code <- -1
				return
			}
		}
	}()
	if err := e.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-code; code != 1001 {
		t.Fatalf("close %d, want 1001", code)
	}
	d := websocket.Dialer{Subprotocols: []string{channel.Subprotocol}}
	if _, resp, err := d.Dial(e.url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial during shutdown: %v", err)
	}
	for i := 2; i <= 4; i++ {
		if _, err := e.hub.Publish(ctx, "room:1", "msg", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.hub.Reopen(); err != nil {
		t.Fatal(err)
	}
	c = e.dial(t, "alice")
	got := c.join(1, "room:1", map[string]any{"recover": channel.Position{Epoch: r.Epoch, Offset: 1}})
	if !got.Recovered || len(got.History) != 3 || got.History[0].Offset != 2 || got.History[2].Offset != 4 {
		t.Fatalf("after reopen: %+v", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A topic whose behaviour fails past its budget stops: its members get
// "left" with reason "stopped", and the next join makes a new topic with a
// new epoch, so a recovery from the old one says so.
func TestTopicStopsPastBudget(t *testing.T) {
	e := newHubEnv(t, &channel.Options{
		Topics: func(name string) *channel.TopicOptions {
			return &channel.TopicOptions{
				ClientPublish: false,
				Handler:       func(t *channel.Topic) actor.Actor { return &chatty{t: t} },
				HandlerPanic:  supervisor.Policy{Directive: supervisor.Stop},
			}
		},
	})
	c := e.dial(t, "alice")
	first := c.join(1, "game:1", nil)
	c.send(`{"t":"push","ref":2,"topic":"game:1","event":"boom"}`)
	// The reply and the "left" come from two actors: either order.
	got := map[string]bool{}
	for range 2 {
		m := c.read()
		switch {
		case m.T == "reply" && m.Ref == 2 && m.Error != nil && m.Error.Code == "internal":
			got["internal"] = true
		case m.T == "left" && m.Topic == "game:1" && m.Reason == "stopped":
			got["left"] = true
		default:
			t.Fatalf("unexpected %s", m.raw)
		}
	}
	if !got["internal"] || !got["left"] {
		t.Fatalf("got %v", got)
	}
	again := c.join(3, "game:1", map[string]any{"recover": channel.Position{Epoch: first.Epoch, Offset: first.Offset}})
	if again.Recovered || again.Reason != channel.ReasonEpoch || again.Epoch == first.Epoch {
		t.Fatalf("rejoin after the topic stopped: %+v, want a new epoch and recovered false", again)
	}
}

// A message over the read limit (1 MiB by default for channels) closes the
// connection with 1009; others carry on.
func TestOversizedMessageCloses(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: publishing})
	other := e.dial(t, "bob")
	c := e.dial(t, "mallory")
	c.join(1, "room:1", nil)
	big := `{"t":"push","ref":2,"topic":"room:1","event":"msg","data":"` + strings.Repeat("x", 1<<20) + `"}`
	_ = c.c.WriteMessage(websocket.TextMessage, []byte(big))
	if code := c.closeCode(); code != 1009 {
		t.Fatalf("close %d, want 1009", code)
	}
	other.send(`{"t":"ping","ref":1}`)
	other.reply(1)
}

// MaxLiveTopics: a join that would start one topic too many is refused
// with "unavailable"; joining a running topic still works, and once a topic
// stops there is room again. Pings spend the rate budget like requests.
func TestMaxLiveTopics(t *testing.T) {
	e := newHubEnv(t, &channel.Options{MaxLiveTopics: 2, Topics: func(string) *channel.TopicOptions {
		return &channel.TopicOptions{IdleTimeout: 50 * time.Millisecond}
	}})
	c := e.dial(t, "mallory")
	c.join(1, "t1", nil)
	c.join(2, "t2", nil)
	c.send(`{"t":"join","ref":3,"topic":"t3"}`)
	c.errorReply(3, "unavailable")
	d := e.dial(t, "dan")
	d.join(1, "t1", nil) // running: fine
	c.send(`{"t":"leave","ref":4,"topic":"t2"}`)
	c.reply(4)
	// t2 stops once idle; until then "unavailable", as a client retrying
	// would see.
	ref := uint64(5)
	waitFor(t, "room for t3 once t2 stopped", func() bool {
		ref++
		c.send(map[string]any{"t": "join", "ref": ref, "topic": "t3"})
		m := c.reply(ref)
		if m.Status == "error" && m.Error.Code != "unavailable" {
			t.Fatalf("join t3: %s", m.raw)
		}
		return m.Status == "ok"
	})

	p := newHubEnv(t, &channel.Options{Rate: channel.Limit{Rate: 0.001, Burst: 2}, AbuseLimit: -1})
	q := p.dial(t, "pinger")
	for ref := uint64(1); ref <= 2; ref++ {
		q.send(map[string]any{"t": "ping", "ref": ref})
		q.reply(ref)
	}
	q.send(`{"t":"ping","ref":3}`)
	q.errorReply(3, "rate_limited")
}

// Admission limits reach the Hub: a user past MaxConnectionsPerUser is
// refused with 429 at the upgrade; others are not.
func TestHubMaxConnectionsPerUser(t *testing.T) {
	e := newHubEnv(t, &channel.Options{MaxConnectionsPerUser: 2})
	e.dial(t, "alice")
	e.dial(t, "alice")
	d := websocket.Dialer{Subprotocols: []string{channel.Subprotocol}}
	_, resp, err := d.Dial(e.url+"?user=alice", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("alice's third tab: %v %+v, want 429 with Retry-After", err, resp)
	}
	e.dial(t, "bob")
}
