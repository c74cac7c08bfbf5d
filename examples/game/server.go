package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

//go:embed static
var static embed.FS

// config is what the tests change.
type config struct {
	Tick       time.Duration // between snapshots; zero means 50ms (20 Hz)
	MaxPlayers int           // zero means 64
}

// server is the game: one board room whose behaviour is the world, the
// WebSocket handler whose connections play on it, and the page.
type server struct {
	tree  *supervisor.Tree
	board *room.Room
	ws    *actors.Handler
	mux   *http.ServeMux
}

func newServer(ctx context.Context, system *actor.ActorSystem, logger zerolog.Logger, cfg config) (*server, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 50 * time.Millisecond
	}
	if cfg.MaxPlayers <= 0 {
		cfg.MaxPlayers = 64
	}
	tree, err := supervisor.New(system)
	if err != nil {
		return nil, fmt.Errorf("game: supervision tree: %w", err)
	}
	board, err := room.Spawn(ctx, tree, "board", &room.Options{
		Logger:       logger,
		Behavior:     newWorld,
		TickInterval: cfg.Tick,
		MaxMembers:   cfg.MaxPlayers,
	})
	if err != nil {
		return nil, errors.Join(err, tree.Shutdown(ctx))
	}
	ws, err := actors.NewHandler(system, func() actor.Actor { return &controller{board: board} }, &actors.HandlerOptions{
		AcceptOptions: transport.AcceptOptions{ReadLimit: readLimit},
		Logger:        logger,
		Tree:          tree,
		Decode:        decode,
	})
	if err != nil {
		return nil, errors.Join(err, tree.Shutdown(ctx))
	}
	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	s := &server{tree: tree, board: board, ws: ws, mux: http.NewServeMux()}
	s.mux.Handle("GET /ws", ws)
	s.mux.Handle("GET /", http.FileServerFS(page))
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Shutdown closes every WebSocket with 1001, then stops the board. Call it
// before http.Server.Shutdown.
func (s *server) Shutdown(ctx context.Context) error {
	return errors.Join(s.ws.Shutdown(ctx), s.tree.Shutdown(ctx))
}

// controller is the behaviour of one player's connection: it joins the
// board and forwards the page's inputs to it. The game state is not here:
// it lives in the board's world, which sends the snapshots straight to
// every player's outbound queue.
type controller struct {
	board *room.Room
	conn  *actors.Conn
}

func (c *controller) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		c.conn = m.Conn
		// Answered with *room.JoinResult; the world welcomes the player.
		ctx.Request(c.board.PID(), &room.Join{Conn: m.Conn})
	case *room.JoinResult:
		if m.Err != nil {
			c.conn.Close(actors.StatusTryAgainLater, "cannot join the board: "+m.Err.Error())
		}
	case *actors.Message:
		cmd, ok := m.Value.(*command) // set by decode
		if !ok {
			return
		}
		switch {
		case cmd.Type == "input" && validAxis(cmd.DX) && validAxis(cmd.DY):
			ctx.Send(c.board.PID(), &input{conn: m.Conn.ID(), dx: cmd.DX, dy: cmd.DY})
		case cmd.Type == "input":
			m.Conn.Close(actors.StatusPolicyViolation, "input: dx and dy must be -1, 0 or 1")
		case cmd.Type == "ping":
			_ = m.Conn.SendText(`{"type":"pong"}`)
		default:
			m.Conn.Close(actors.StatusPolicyViolation, fmt.Sprintf("unknown message type %q", cmd.Type))
		}
	case *actors.Closed:
		m.Conn.Logger().Debug().Int("code", int(m.Code)).AnErr("cause", m.Err).Msg("player left")
	}
}
