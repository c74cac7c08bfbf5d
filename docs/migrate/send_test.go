package migrate_test

import (
	"fmt"
	"log"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// ws: ws.send(data, callback) and ws.bufferedAmount. SendNotify calls back
// once the frame is written to the socket (nil) or lost (the error); from
// another actor, a *actors.Send with ReplyTo is answered with *actors.Sent.
func Example_sendCallback() {
	system := actors.NewSystem(zerolog.Nop())
	opened := make(chan *actors.Conn, 1)
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				opened <- m.Conn
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	conn := <-opened

	// From any goroutine or actor holding the Conn:
	written := make(chan error, 1)
	f := transport.NewFrame(transport.MessageText, []byte("hello"))
	if err := conn.SendNotify(f, func(err error) {
		written <- err // runs on the writer goroutine: do not block here
	}); err != nil {
		written <- err // refused at once: closing, or the queue is full
	}
	queued, bytes := conn.Buffered() // ws's bufferedAmount (not yet written)
	_, _ = queued, bytes
	_, p, _ := c.ReadMessage()
	fmt.Printf("client got %q; callback: %v\n", p, <-written)

	// From another actor that has only the PID: the outcome is a message.
	sent := make(chan *actors.Sent, 1)
	notifier := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*actors.Sent); ok {
			sent <- m
		}
	}))
	defer system.Root.Stop(notifier)
	system.Root.Send(conn.PID(), &actors.Send{Type: actors.Text, Data: []byte("world"), ReplyTo: notifier, ID: 42})
	_, p, _ = c.ReadMessage()
	s := <-sent
	fmt.Printf("client got %q; Sent{ID: %d, Err: %v}\n", p, s.ID, s.Err)
	// Output:
	// client got "hello"; callback: <nil>
	// client got "world"; Sent{ID: 42, Err: <nil>}
}
