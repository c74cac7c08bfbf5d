package channel_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
)

func ExampleDial() {
	system := actors.NewSystem(zerolog.Nop())
	hub, err := channel.NewHub(system, &channel.Options{
		Logger: zerolog.Nop(),
		Topics: func(string) *channel.TopicOptions { return &channel.TopicOptions{ClientPublish: true} },
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close(context.Background()) // runs before srv.Close

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The client reconnects by itself, rejoins its topics and recovers the
	// events it missed, until Close.
	c, err := channel.Dial(ctx, system, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	events := make(chan channel.Event, 16)
	sub, _, err := c.Join(ctx, "chat:lobby", &channel.JoinOptions{
		History: 50,
		Handler: func(e channel.Event) { events <- e },
		OnRejoin: func(r *channel.JoinReply, err error) {
			if err == nil && !r.Recovered {
				log.Printf("events missed for good (%s): reloading", r.Reason)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	reply, err := sub.Push(ctx, "msg", map[string]string{"text": "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("reply:", string(reply))
	e := <-events // the topic publishes the push to every member, the sender too
	fmt.Println(e.Event, string(e.Data), e.Offset)
	// Output:
	// reply: {"offset":1}
	// msg {"text":"hello"} 1
}
