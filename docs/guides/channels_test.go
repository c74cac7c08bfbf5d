package guides_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
)

// chatTopic is a topic's behaviour: it publishes "msg" pushes with the
// sender's name, refuses empty ones, and answers "whois" with the members.
type chatTopic struct {
	topic *channel.Topic
}

func (c *chatTopic) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *channel.Push:
		switch m.Event {
		case "msg":
			var in struct{ Text string }
			if json.Unmarshal(m.Data, &in) != nil || in.Text == "" {
				m.Fail(channel.Errorf("empty", "say something"))
				return
			}
			pos, err := c.topic.Publish("msg", map[string]string{"from": m.From.User, "text": in.Text})
			if err != nil {
				m.Fail(err)
				return
			}
			m.Reply(map[string]uint64{"offset": pos.Offset})
		case "whois":
			m.Reply(len(c.topic.Members()))
		default:
			m.Fail(channel.Errorf("unknown_event", "no event %q", m.Event))
		}
	case *channel.Joined:
		// m.Member joined: it already has its history and presence.
	}
}

// newChatHub is the server: who you are comes from the upgrade request,
// which rooms you may join from Authorize, what a topic does from Topics.
func newChatHub(system *actor.ActorSystem) (*channel.Hub, error) {
	return channel.NewHub(system, &channel.Options{
		Authenticate: func(r *http.Request) (channel.Identity, error) {
			user := r.URL.Query().Get("user") // in a real service: check a token
			if user == "" {
				return channel.Identity{}, fmt.Errorf("no user")
			}
			return channel.Identity{User: user, Meta: map[string]string{"name": user}}, nil
		},
		Authorize: func(j *channel.JoinRequest) (channel.Authorization, error) {
			if strings.HasPrefix(j.Topic, "admin:") && j.Member.User != "root" {
				return channel.Authorization{}, channel.Errorf("forbidden", "admins only")
			}
			return channel.Authorization{Reply: map[string]string{"hello": j.Member.User}}, nil
		},
		Topics: func(name string) *channel.TopicOptions {
			return &channel.TopicOptions{
				History:  50, // the last 50 messages for joins and recovery
				Presence: true,
				Handler:  func(t *channel.Topic) actor.Actor { return &chatTopic{topic: t} },
			}
		},
	})
}

// A chat on channels: join with history, push with a reply, presence, and
// recovery of what was published while a client was away.
func Example_channels() {
	system := actors.NewSystem(zerolog.Nop())
	hub, err := newChatHub(system)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", hub)
	mux.Handle("/wsactor/", http.StripPrefix("/wsactor/", channel.ClientHandler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer hub.Close(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?user=alice"

	// Any WebSocket client speaks the protocol: JSON messages, one per
	// WebSocket message (docs/channels-protocol.md).
	d := websocket.Dialer{Subprotocols: []string{channel.Subprotocol}}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	say := func(s string) { _ = c.WriteMessage(websocket.TextMessage, []byte(s)) }
	next := func() string {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, p, _ := c.ReadMessage()
		return string(p)
	}
	hideID := func(s string) string { // connection ids are random
		i := strings.Index(s, `"id":"`)
		return s[:i+6] + "ID" + s[i+6+12:]
	}
	epochOf := func(reply string) string {
		var r struct{ Data channel.JoinReply }
		_ = json.Unmarshal([]byte(reply), &r)
		return r.Data.Epoch
	}

	say(`{"t":"join","ref":1,"topic":"room:lobby"}`)
	reply := next()
	epoch := epochOf(reply)
	fmt.Println(strings.Replace(reply, epoch, "EPOCH", 1))
	fmt.Println(hideID(next())) // presence_state
	say(`{"t":"push","ref":2,"topic":"room:lobby","event":"msg","data":{"text":"hi"}}`)
	fmt.Println(next()) // the event, to every member
	fmt.Println(next()) // the reply to the push
	say(`{"t":"push","ref":3,"topic":"room:lobby","event":"msg","data":{"text":""}}`)
	fmt.Println(next())

	// Away: two messages are published from Go meanwhile.
	c.Close()
	for _, text := range []string{"are you there?", "back soon"} {
		if _, err := hub.Publish(context.Background(), "room:lobby", "msg", map[string]string{"from": "bob", "text": text}); err != nil {
			log.Fatal(err)
		}
	}
	c, _, err = d.Dial(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	say(fmt.Sprintf(`{"t":"join","ref":1,"topic":"room:lobby","recover":{"epoch":%q,"offset":1}}`, epoch))
	fmt.Println(strings.Replace(next(), epoch, "EPOCH", 1))
	c.Close()
	// Output:
	// {"t":"reply","ref":1,"topic":"room:lobby","status":"ok","data":{"epoch":"EPOCH","offset":0,"recovered":false,"history":[],"reply":{"hello":"alice"}}}
	// {"t":"presence_state","topic":"room:lobby","state":{"alice":{"metas":[{"id":"ID","meta":{"name":"alice"}}]}}}
	// {"t":"event","topic":"room:lobby","event":"msg","data":{"from":"alice","text":"hi"},"offset":1}
	// {"t":"reply","ref":2,"topic":"room:lobby","status":"ok","data":{"offset":1}}
	// {"t":"reply","ref":3,"topic":"room:lobby","status":"error","error":{"code":"empty","message":"say something"}}
	// {"t":"reply","ref":1,"topic":"room:lobby","status":"ok","data":{"epoch":"EPOCH","offset":3,"recovered":true,"history":[{"event":"msg","data":{"from":"bob","text":"are you there?"},"offset":2},{"event":"msg","data":{"from":"bob","text":"back soon"},"offset":3}],"reply":{"hello":"alice"}}}
}
