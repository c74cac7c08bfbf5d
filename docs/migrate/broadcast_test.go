package migrate_test

import (
	"context"
	"fmt"
	"log"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// member joins everyone (ws's wss.clients) and, for each message, asks the
// room to broadcast it: to all, or to all others.
type member struct {
	everyone *room.Room
	others   bool
}

func (b *member) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		ctx.Request(b.everyone.PID(), &room.Join{Conn: m.Conn})
	case *room.JoinResult:
		ctx.Send(ctx.Self(), &actors.Send{Type: actors.Text, Data: []byte("joined")})
	case *actors.Message:
		if b.others {
			// ws: if (client !== ws && client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary })
			ctx.Send(b.everyone.PID(), &room.Broadcast{Type: m.Type, Data: m.Data, Except: m.Conn.PID()})
		} else {
			// ws: if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary })
			ctx.Send(b.everyone.PID(), &room.Broadcast{Type: m.Type, Data: m.Data})
		}
	}
}

// ws README: "Server broadcast", to all clients including the sender, and
// to every other client.
func Example_serverBroadcast() {
	for _, others := range []bool{false, true} {
		system := actors.NewSystem(zerolog.Nop())
		tree, err := supervisor.New(system)
		if err != nil {
			log.Fatal(err)
		}
		everyone, err := room.Spawn(context.Background(), tree, "everyone", nil)
		if err != nil {
			log.Fatal(err)
		}
		h, err := actors.NewHandler(system, func() actor.Actor { return &member{everyone: everyone, others: others} },
			&actors.HandlerOptions{Tree: tree})
		if err != nil {
			log.Fatal(err)
		}
		url, stop := serve(h)

		var clients []*websocket.Conn
		for range 3 {
			c, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				log.Fatal(err)
			}
			_, _, _ = c.ReadMessage() // "joined": it gets every broadcast from now on
			clients = append(clients, c)
		}
		_ = clients[0].WriteMessage(websocket.BinaryMessage, []byte("news"))
		fmt.Printf("others=%t: news reached", others)
		for i, c := range clients {
			if others && i == 0 {
				continue
			}
			typ, p, _ := c.ReadMessage()
			fmt.Printf(" client%d (%s, binary %t)", i, p, typ == websocket.BinaryMessage)
		}
		fmt.Println()
		if others {
			// A room gives every member its broadcasts in one order, so had
			// client0 got its own news, it would read it before this.
			_ = clients[1].WriteMessage(websocket.TextMessage, []byte("more"))
			_, p, _ := clients[0].ReadMessage()
			fmt.Println("client0 reads next:", string(p))
		}
		for _, c := range clients {
			c.Close()
		}
		stop()
		_ = tree.Shutdown(context.Background())
	}
	// Output:
	// others=false: news reached client0 (news, binary true) client1 (news, binary true) client2 (news, binary true)
	// others=true: news reached client1 (news, binary true) client2 (news, binary true)
	// client0 reads next: more
}
