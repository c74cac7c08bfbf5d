package channel_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
)

// counterTopic is a topic's behaviour: its state (a count) lives in its
// fields, touched only by the topic's actor.
type counterTopic struct {
	topic *channel.Topic
	n     int
}

func (c *counterTopic) Receive(ctx actor.Context) {
	if p, ok := ctx.Message().(*channel.Push); ok && p.Event == "add" {
		c.n++
		if _, err := c.topic.Publish("count", c.n); err != nil {
			p.Fail(err)
			return
		}
		p.Reply(c.n)
	}
}

// A Hub: who connects (Authenticate), what a topic does (Topics), and the
// browser client next to it. Events published from Go (a backend job, an
// HTTP handler) are kept for joins and recovery like the topic's own.
func ExampleNewHub() {
	system := actors.NewSystem(zerolog.Nop())
	hub, err := channel.NewHub(system, &channel.Options{
		Logger: zerolog.Nop(),
		Authenticate: func(r *http.Request) (channel.Identity, error) {
			return channel.Identity{User: r.URL.Query().Get("user")}, nil
		},
		Topics: func(name string) *channel.TopicOptions {
			return &channel.TopicOptions{
				History: 10,
				Handler: func(t *channel.Topic) actor.Actor { return &counterTopic{topic: t} },
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", hub)
	mux.Handle("/wsactor/", http.StripPrefix("/wsactor/", channel.ClientHandler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer hub.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := hub.Publish(ctx, "counter:1", "reset", nil); err != nil {
		log.Fatal(err)
	}
	c, err := channel.Dial(ctx, system, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?user=alice", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	events := make(chan channel.Event, 16)
	sub, joined, err := c.Join(ctx, "counter:1", &channel.JoinOptions{History: 10, Handler: func(e channel.Event) { events <- e }})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("joined at offset", joined.Offset, "with", len(joined.History), "event of history")
	fmt.Println("history:", (<-events).Event)
	for range 2 {
		n, err := sub.Push(ctx, "add", nil)
		if err != nil {
			log.Fatal(err)
		}
		e := <-events
		fmt.Printf("reply %s, event %s %s at %d\n", n.Data, e.Event, e.Data, e.Offset)
	}
	// Output:
	// joined at offset 1 with 1 event of history
	// history: reset
	// reply 1, event count 1 at 2
	// reply 2, event count 2 at 3
}
