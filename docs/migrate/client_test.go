package migrate_test

import (
	"encoding/binary"
	"fmt"
	"log"
	"math"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
)

// echoServer is the peer of the client examples.
func echoServer(system *actor.ActorSystem) (string, func()) {
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				_ = m.Conn.Send(m.Type, m.Data)
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	return serve(h)
}

// ws README: "Sending and receiving text data".
func Example_sendingAndReceivingText() {
	system := actors.NewSystem(zerolog.Nop())
	url, stop := echoServer(system)
	defer stop()

	done := make(chan struct{})
	ctx, cancel := dialTimeout()
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, url, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened: // ws.on('open')
				_ = m.Conn.SendText("something")
			case *actors.Message: // ws.on('message')
				fmt.Printf("received: %s\n", m.Data)
				m.Conn.Close(actors.StatusNormalClosure, "")
			case *actors.Closed: // ws.on('close'); errors arrive here too, in m.Err
				close(done)
			}
		})
	}, nil)
	if err != nil { // ws.on('error') for the handshake
		log.Fatal(err)
	}
	<-done
	<-conn.Transport().Done()
	// Output: received: something
}

// ws README: "Sending binary data".
func Example_sendingBinaryData() {
	system := actors.NewSystem(zerolog.Nop())
	url, stop := echoServer(system)
	defer stop()

	got := make(chan []float32, 1)
	ctx, cancel := dialTimeout()
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, url, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				array := make([]byte, 0, 5*4) // a Float32Array(5), little-endian as in JS
				for i := range 5 {
					array = binary.LittleEndian.AppendUint32(array, math.Float32bits(float32(i)/2))
				}
				_ = m.Conn.Send(actors.Binary, array)
			case *actors.Message:
				var fs []float32
				for b := m.Data; len(b) >= 4; b = b[4:] {
					fs = append(fs, math.Float32frombits(binary.LittleEndian.Uint32(b)))
				}
				got <- fs
				m.Conn.Close(actors.StatusNormalClosure, "")
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("echoed:", <-got)
	<-conn.Transport().Done()
	// Output: echoed: [0 0.5 1 1.5 2]
}
