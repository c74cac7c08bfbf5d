package main

import (
	"cmp"
	"encoding/json"
	"math/rand/v2"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
)

// The board, in the page's canvas pixels.
const (
	boardWidth  = 800
	boardHeight = 500
	speed       = 5  // pixels per tick along each axis
	radius      = 10 // of a dot, kept inside the board
)

var colors = []string{"#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#808000"}

// input is what a connection actor tells the board: the direction its
// player's keys point to now. The world applies it on the next ticks.
type input struct {
	conn   string // the connection's id
	dx, dy int    // -1, 0 or 1
}

// IgnoreDeadLetterLogging: an input may reach a board that just stopped.
func (*input) IgnoreDeadLetterLogging() {}

// player is one dot on the board.
type player struct {
	ID     int    `json:"id"`
	X      int    `json:"x"`
	Y      int    `json:"y"`
	Color  string `json:"color"`
	dx, dy int
}

// world is the board room's behaviour (room.Options.Behavior) and the only
// holder of the game state: players join and leave with the room's
// membership, inputs arrive as *input messages, and every *room.Tick moves
// the players and broadcasts one snapshot to everyone.
type world struct {
	state   *room.State
	players map[string]*player // by connection id
	nextID  int
}

func newWorld(s *room.State) actor.Actor {
	return &world{state: s, players: map[string]*player{}}
}

func (w *world) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *room.Joined:
		w.nextID++
		p := &player{
			ID:    w.nextID,
			X:     radius + rand.IntN(boardWidth-2*radius),
			Y:     radius + rand.IntN(boardHeight-2*radius),
			Color: colors[(w.nextID-1)%len(colors)],
		}
		w.players[m.Member.PID().Id] = p
		// Only the new player learns its id; everyone sees it in the next
		// snapshot.
		w.send(m.Member.PID(), welcome{Type: "welcome", ID: p.ID, Color: p.Color, Width: boardWidth, Height: boardHeight})
	case *room.Left:
		delete(w.players, m.Member.PID().Id)
	case *input:
		if p, ok := w.players[m.conn]; ok {
			p.dx, p.dy = m.dx, m.dy
		}
	case *room.Tick:
		if len(w.players) == 0 {
			return
		}
		w.step()
		w.broadcast(m.Seq)
	}
}

// step moves every player one tick along its direction.
func (w *world) step() {
	for _, p := range w.players {
		p.X = min(max(p.X+p.dx*speed, radius), boardWidth-radius)
		p.Y = min(max(p.Y+p.dy*speed, radius), boardHeight-radius)
	}
}

// broadcast sends the state to every player as one frame with the
// conflation key "state": a player whose connection is slow has at most one
// snapshot waiting, the latest, instead of a growing backlog.
func (w *world) broadcast(tick uint64) {
	s := snapshot{Type: "state", Tick: tick, Players: make([]*player, 0, len(w.players))}
	for _, p := range w.players {
		s.Players = append(s.Players, p)
	}
	slices.SortFunc(s.Players, func(a, b *player) int { return cmp.Compare(a.ID, b.ID) })
	data, err := json.Marshal(s)
	if err != nil {
		w.state.Logger().Error().Err(err).Msg("encoding a snapshot")
		return
	}
	w.state.Broadcast(transport.NewKeyedFrame(transport.MessageText, data, "state"), nil)
}

func (w *world) send(to *actor.PID, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		w.state.Logger().Error().Err(err).Msg("encoding a message")
		return
	}
	_ = w.state.Send(to, transport.NewFrame(transport.MessageText, data))
}
