package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// toAll is a connection on /all: what a client sends goes to every client
// connected there, itself included.
type toAll struct {
	room *room.Room
	conn *actors.Conn
}

func (b *toAll) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		b.conn = m.Conn
		join(ctx, b.room, m.Conn)
	case *room.JoinResult:
		welcome(b.conn, m)
	case *actors.Message:
		// ws: wss.clients.forEach(client => client.send(data, { binary: isBinary }))
		ctx.Send(b.room.PID(), &room.Broadcast{Type: m.Type, Data: m.Data})
	}
}

// toOthers is a connection on /others: what a client sends goes to every
// other client connected there.
type toOthers struct {
	room *room.Room
	conn *actors.Conn
}

func (b *toOthers) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		b.conn = m.Conn
		join(ctx, b.room, m.Conn)
	case *room.JoinResult:
		welcome(b.conn, m)
	case *actors.Message:
		// ws: if (client !== ws) client.send(data, { binary: isBinary })
		ctx.Send(b.room.PID(), &room.Broadcast{Type: m.Type, Data: m.Data, Except: m.Conn.PID()})
	}
}

// join asks the room to add conn; the room answers the actor with a
// *room.JoinResult. ws's wss.clients is a room everybody joins.
func join(ctx actor.Context, r *room.Room, conn *actors.Conn) {
	ctx.Request(r.PID(), &room.Join{Conn: conn, Snapshot: true})
}

// welcome tells the client it is in, and how many are: from then on it
// receives every broadcast.
func welcome(conn *actors.Conn, res *room.JoinResult) {
	if res.Err != nil {
		conn.Close(actors.StatusTryAgainLater, "cannot join")
		return
	}
	_ = conn.SendText(fmt.Sprintf("joined %s: %d connected", res.Room, len(res.Members)))
}

// server is the two endpoints, each with its room, in one supervision tree.
type server struct {
	tree        *supervisor.Tree
	all, others *actors.Handler
	mux         *http.ServeMux
}

func newServer(ctx context.Context, system *actor.ActorSystem, logger zerolog.Logger) (*server, error) {
	tree, err := supervisor.New(system)
	if err != nil {
		return nil, fmt.Errorf("broadcast: %w", err)
	}
	allRoom, err := room.Spawn(ctx, tree, "all", &room.Options{Logger: logger})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("broadcast: %w", err), tree.Shutdown(ctx))
	}
	othersRoom, err := room.Spawn(ctx, tree, "others", &room.Options{Logger: logger})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("broadcast: %w", err), tree.Shutdown(ctx))
	}
	opts := &actors.HandlerOptions{Logger: logger, Tree: tree}
	all, err := actors.NewHandler(system, func() actor.Actor { return &toAll{room: allRoom} }, opts)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("broadcast: %w", err), tree.Shutdown(ctx))
	}
	others, err := actors.NewHandler(system, func() actor.Actor { return &toOthers{room: othersRoom} }, opts)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("broadcast: %w", err), tree.Shutdown(ctx))
	}
	s := &server{tree: tree, all: all, others: others, mux: http.NewServeMux()}
	s.mux.Handle("/all", s.all)
	s.mux.Handle("/others", s.others)
	return s, nil
}

// Shutdown closes every connection with 1001, then stops the rooms and the
// tree (the Handlers share it, so neither owns it).
func (s *server) Shutdown(ctx context.Context) error {
	return errors.Join(s.all.Shutdown(ctx), s.others.Shutdown(ctx), s.tree.Shutdown(ctx))
}
