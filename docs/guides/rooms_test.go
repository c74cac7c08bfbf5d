package guides_test

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// chatter is a chat connection: it joins the room named in the URL
// (?room=lobby&name=alice), tells its client who is there and who comes and
// goes, and relays what its client says to the others.
type chatter struct {
	rooms *room.Registry
	conn  *actors.Conn
	name  string
	room  *room.Room
}

func (c *chatter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		c.conn = m.Conn
		q := m.Conn.Request().URL.Query()
		c.name = q.Get("name")
		// JoinAsync makes the room on first use and joins it without
		// blocking this actor; the answer comes back as a *room.JoinResult.
		join := &room.Join{Conn: m.Conn, User: c.name, Meta: c.name, Snapshot: true}
		c.rooms.JoinAsync(q.Get("room"), join, ctx.Self(), 5*time.Second)
	case *room.JoinResult:
		r, ok := c.rooms.Lookup(m.Room)
		if m.Err != nil || !ok {
			c.conn.Close(actors.StatusTryAgainLater, "cannot join "+m.Room)
			return
		}
		c.room = r
		var names []string
		for _, mem := range m.Members {
			names = append(names, mem.Meta.(string))
		}
		sort.Strings(names)
		_ = c.conn.SendText("here: " + strings.Join(names, ", "))
	case *room.Joined: // presence: with Options.Presence, every member hears of every join
		if !m.Member.Conn.PID().Equal(ctx.Self()) {
			_ = c.conn.SendText(m.Member.Meta.(string) + " joined")
		}
	case *room.Left:
		if m.Last { // the user's last connection (tab) in the room went
			_ = c.conn.SendText(fmt.Sprintf("%s left", m.Member.Meta))
		}
	case *actors.Message:
		if c.room == nil {
			return // not in the room yet
		}
		ctx.Send(c.room.PID(), &room.Broadcast{
			Data:   []byte(c.name + ": " + m.Text()),
			Except: m.Conn.PID(), // everyone but the sender
		})
	}
}

// Rooms by name, with presence: join, leave when the connection closes,
// and broadcast to the others.
func Example_roomsAndPresence() {
	system := actors.NewSystem(zerolog.Nop())
	tree, err := supervisor.New(system)
	if err != nil {
		log.Fatal(err)
	}
	rooms := room.NewRegistry(tree, &room.RegistryOptions{
		Options: func(name string) *room.Options {
			return &room.Options{Presence: true, IdleTimeout: time.Minute}
		},
	})
	h, err := actors.NewHandler(system, func() actor.Actor { return &chatter{rooms: rooms} },
		&actors.HandlerOptions{Tree: tree}) // connections and rooms in one tree
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer func() {
		stop()                                  // connections first,
		_ = tree.Shutdown(context.Background()) // then the rooms
	}()

	connect := func(name string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url+"?room=lobby&name="+name, nil)
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	read := func(who string, c *websocket.Conn) {
		_, p, _ := c.ReadMessage()
		fmt.Printf("%s got: %s\n", who, p)
	}
	alice := connect("alice")
	defer alice.Close()
	read("alice", alice)
	bob := connect("bob")
	read("bob", bob)
	read("alice", alice) // bob joined

	_ = bob.WriteMessage(websocket.TextMessage, []byte("hi"))
	read("alice", alice)
	bob.Close()          // no Leave needed: the room watches its members
	read("alice", alice) // bob left
	// Output:
	// alice got: here: alice
	// bob got: here: alice, bob
	// alice got: bob joined
	// alice got: bob: hi
	// alice got: bob left
}
