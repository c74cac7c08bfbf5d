package room_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// chatter is one chat connection: it joins the lobby when opened and
// broadcasts what its client says to everyone else.
type chatter struct {
	lobby *room.Room
	name  string
	conn  *actors.Conn
}

func (c *chatter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		c.conn = m.Conn
		c.name = m.Conn.Request().URL.Query().Get("name")
		ctx.Request(c.lobby.PID(), &room.Join{Conn: m.Conn, Meta: c.name, Snapshot: true})
	case *room.JoinResult:
		if m.Err != nil {
			c.conn.Close(4000, m.Err.Error())
			return
		}
		_ = c.conn.SendText(fmt.Sprintf("welcome %s, %d online", c.name, len(m.Members)))
	case *actors.Message:
		ctx.Send(c.lobby.PID(), &room.Broadcast{
			Data:   []byte(c.name + ": " + m.Text()),
			Except: m.Conn.PID(),
		})
	}
}

func ExampleRegistry() {
	system := actors.NewSystem(zerolog.Nop())
	tree, err := supervisor.New(system)
	if err != nil {
		log.Fatal(err)
	}
	rooms := room.NewRegistry(tree, nil)
	lobby, err := rooms.Get(context.Background(), "lobby")
	if err != nil {
		log.Fatal(err)
	}

	h, err := actors.NewHandler(system, func() actor.Actor { return &chatter{lobby: lobby} },
		&actors.HandlerOptions{Tree: tree})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer func() {
		// Connections first, then the rooms, then the HTTP server.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		_ = tree.Shutdown(ctx)
		srv.Close()
	}()

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "?name="
	connect := func(name string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url+name, nil)
		if err != nil {
			log.Fatal(err)
		}
		_, p, _ := c.ReadMessage()
		fmt.Println(string(p))
		return c
	}
	alice := connect("alice")
	defer alice.Close()
	bob := connect("bob")
	defer bob.Close()

	_ = alice.WriteMessage(websocket.TextMessage, []byte("hi bob"))
	_, p, _ := bob.ReadMessage()
	fmt.Println("bob got", string(p))
	// Output:
	// welcome alice, 1 online
	// welcome bob, 2 online
	// bob got alice: hi bob
}
