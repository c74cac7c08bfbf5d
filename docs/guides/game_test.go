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
	"github.com/wsactor/wsactor/transport"
)

// move is a player's input, sent by its connection actor to the game room.
type move struct {
	player string
	dx     int
}

// board is the game room's behaviour: the authoritative state, changed only
// by inputs, broadcast once per tick.
type board struct {
	state *room.State
	x     map[string]int
}

func newBoard(s *room.State) actor.Actor { return &board{state: s, x: map[string]int{}} }

func (b *board) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *room.Joined:
		if m.First { // the user's first connection
			b.x[m.Member.User] = 0
		}
	case *room.Left:
		if m.Last {
			delete(b.x, m.Member.User)
		}
	case *move: // anything the room itself does not handle reaches the behaviour
		b.x[m.player] += m.dx
	case *room.Tick:
		// One snapshot per tick, with a conflation key: a client that reads
		// slowly gets the latest board instead of a backlog.
		snap := transport.NewKeyedFrame(transport.MessageText, b.snapshot(), "board")
		b.state.Broadcast(snap, nil)
	}
}

func (b *board) snapshot() []byte {
	var ps []string
	for p, x := range b.x {
		ps = append(ps, fmt.Sprintf("%s=%d", p, x))
	}
	sort.Strings(ps)
	return []byte(strings.Join(ps, " "))
}

// player is a connection in the game: it joins the room and turns its
// client's messages into inputs for the room.
type player struct {
	game *room.Room
	name string
}

func (p *player) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		p.name = m.Conn.Request().URL.Query().Get("name")
		ctx.Send(p.game.PID(), &room.Join{Conn: m.Conn, User: p.name})
	case *actors.Message:
		switch m.Text() {
		case "left":
			ctx.Send(p.game.PID(), &move{player: p.name, dx: -1})
		case "right":
			ctx.Send(p.game.PID(), &move{player: p.name, dx: +1})
		}
	}
}

// A tick-based game room: inputs in, one snapshot per tick out.
func Example_gameRoom() {
	system := actors.NewSystem(zerolog.Nop())
	tree, err := supervisor.New(system)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	game, err := room.Spawn(ctx, tree, "game", &room.Options{
		Behavior:     newBoard,
		TickInterval: 50 * time.Millisecond, // 20 Hz
	})
	if err != nil {
		log.Fatal(err)
	}
	h, err := actors.NewHandler(system, func() actor.Actor { return &player{game: game} },
		&actors.HandlerOptions{Tree: tree})
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer func() { stop(); _ = tree.Shutdown(context.Background()) }()

	connect := func(name string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url+"?name="+name, nil)
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	alice, bob := connect("alice"), connect("bob")
	defer alice.Close()
	defer bob.Close()
	for _, in := range []string{"right", "right"} {
		_ = alice.WriteMessage(websocket.TextMessage, []byte(in))
	}
	_ = bob.WriteMessage(websocket.TextMessage, []byte("left"))

	// Snapshots arrive every tick; wait for the one with every input.
	for {
		_, p, err := alice.ReadMessage()
		if err != nil {
			log.Fatal(err)
		}
		if string(p) == "alice=2 bob=-1" {
			fmt.Println("alice sees:", string(p))
			break
		}
	}
	// Output: alice sees: alice=2 bob=-1
}
