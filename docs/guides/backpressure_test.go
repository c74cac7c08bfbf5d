package guides_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"runtime"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// slowClient dials url; the example reads from it only when it is told to,
// like a client on a bad mobile link.
func slowClient(url string) *websocket.Conn {
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// openedConns returns a Handler whose connections are handed to the caller
// as they open, so the example can send to them from its own goroutine (any
// goroutine may).
func openedConns(opts *actors.HandlerOptions) (*actors.Handler, chan *actors.Conn) {
	opened := make(chan *actors.Conn, 8)
	h, err := actors.NewHandler(actors.NewSystem(zerolog.Nop()), func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				opened <- m.Conn
			}
		})
	}, opts)
	if err != nil {
		log.Fatal(err)
	}
	return h, opened
}

// A client that does not keep up fills its connection's outbound queue; by
// default it is then closed with 1013 (try again later) instead of making the
// server buffer without bound.
func Example_overflowDisconnect() {
	var opts actors.HandlerOptions
	opts.QueueMessages = 64   // at most 64 messages waiting to be written,
	opts.QueueBytes = 1 << 20 // or 1 MiB
	opts.Overflow = transport.OverflowDisconnect
	h, opened := openedConns(&opts)
	url, stop := serve(h)
	defer stop()
	client := slowClient(url)
	defer client.Close()
	conn := <-opened

	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var err error
	for err == nil {
		err = conn.Send(actors.Binary, chunk) // never blocks; fails once the queue is full
	}
	fmt.Println("send:", err)
	// The client reads what was written before the queue overflowed, then
	// the close frame (queued messages are dropped).
	for {
		_, r, err := client.NextReader()
		if err != nil {
			fmt.Println("client:", err)
			break
		}
		_, _ = io.Copy(io.Discard, r)
	}
	// Output:
	// send: transport: send queue full
	// client: websocket: close 1013: send queue full
}

// With a conflation key, a queued frame is replaced by a newer one with the
// same key: a slow client gets the latest state, not a backlog.
func Example_conflation() {
	h, opened := openedConns(nil)
	url, stop := serve(h)
	defer stop()
	client := slowClient(url)
	defer client.Close()
	conn := <-opened

	// More than the kernel's socket buffers take (about 4 MiB here): the
	// writer is stuck until the client reads.
	_ = conn.SendFrame(transport.NewFrame(transport.MessageBinary, make([]byte, 6<<20)))
	for n, _ := conn.Buffered(); n > 0; n, _ = conn.Buffered() {
		runtime.Gosched() // until the writer has taken it
	}

	replaced := 0
	for i := 1; i <= 100; i++ {
		f := transport.NewKeyedFrame(transport.MessageText, fmt.Appendf(nil, "state %d", i), "state")
		_ = conn.SendNotify(f, func(err error) {
			if errors.Is(err, transport.ErrConflated) {
				replaced++ // called on this goroutine, by the Send that replaced it
			}
		})
	}
	msgs, size := conn.Buffered() // ws's bufferedAmount
	fmt.Printf("queued: %d message, %d bytes; replaced: %d\n", msgs, size, replaced)

	_, big, _ := client.NextReader() // the 6 MiB
	_, _ = io.Copy(io.Discard, big)
	_, p, _ := client.ReadMessage()
	fmt.Println("client reads:", string(p))
	// Output:
	// queued: 1 message, 9 bytes; replaced: 99
	// client reads: state 100
}

// Limits on what the server accepts. (Compiled, not run.)
func Example_limits() {
	var opts actors.HandlerOptions
	opts.ReadLimit = 64 << 10    // larger messages close with 1009, unread
	opts.InboxLimit = 16         // the reader pauses while 16 messages wait for the actor
	opts.MaxConnections = 10_000 // more upgrades get 503 with Retry-After
	opts.QueueMessages = 256
	opts.QueueBytes = 1 << 20
	opts.Overflow = transport.OverflowDropOldest // or OverflowDropNewest, OverflowDisconnect
	if _, err := actors.NewHandler(actors.NewSystem(zerolog.Nop()), func() actor.Actor { return &greeter{} }, &opts); err != nil {
		log.Fatal(err)
	}
}
