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
	fmt.Println("reply:", string(reply.Data))
	e := <-events // the topic publishes the push to every member, the sender too
	fmt.Println(e.Event, string(e.Data), e.Offset)

	// A []byte is a bytes payload (a protobuf message, an image): it
	// arrives as Event.Bin, base64 in the JSON encoding, raw in the binary
	// one (ClientOptions.Binary).
	if _, err := sub.Push(ctx, "blob", []byte{0xca, 0xfe}); err != nil {
		log.Fatal(err)
	}
	e = <-events
	fmt.Printf("%s %x %d\n", e.Event, e.Bin, e.Offset)
	// Output:
	// reply: {"offset":1}
	// msg {"text":"hello"} 1
	// blob cafe 2
}

// With ClientOptions.Binary the client speaks the protocol's binary
// encoding; the API is the same.
func ExampleClientOptions_binary() {
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
	defer hub.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := channel.Dial(ctx, system, "ws"+strings.TrimPrefix(srv.URL, "http"), &channel.ClientOptions{Binary: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	events := make(chan channel.Event, 16)
	sub, _, err := c.Join(ctx, "game:1", &channel.JoinOptions{Handler: func(e channel.Event) { events <- e }})
	if err != nil {
		log.Fatal(err)
	}
	for _, data := range []any{[]byte{1, 2, 3}, map[string]int{"x": 4}} {
		if err := sub.PushNoReply(ctx, "move", data); err != nil {
			log.Fatal(err)
		}
		if e := <-events; e.Bin != nil {
			fmt.Println("bytes", e.Bin)
		} else {
			fmt.Println("JSON", string(e.Data))
		}
	}
	// Output:
	// bytes [1 2 3]
	// JSON {"x":4}
}
