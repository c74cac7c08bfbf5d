package main

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
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

// joinTimeout bounds making and joining a room.
const joinTimeout = 5 * time.Second

// server is the chat application: a registry of rooms, the WebSocket
// handler whose connections join them, and the page. Both live in one
// supervision tree.
type server struct {
	tree  *supervisor.Tree
	rooms *room.Registry
	ws    *actors.Handler
	mux   *http.ServeMux
}

func newServer(system *actor.ActorSystem, logger zerolog.Logger) (*server, error) {
	tree, err := supervisor.New(system)
	if err != nil {
		return nil, fmt.Errorf("chat: supervision tree: %w", err)
	}
	rooms := room.NewRegistry(tree, &room.RegistryOptions{
		Logger: logger,
		Options: func(string) *room.Options {
			// Presence: every member's connection actor gets *room.Joined
			// and *room.Left. An empty room stops after a minute.
			return &room.Options{Presence: true, IdleTimeout: time.Minute, MaxMembers: 1000}
		},
	})
	ws, err := actors.NewHandler(system, func() actor.Actor { return &client{rooms: rooms} }, &actors.HandlerOptions{
		AcceptOptions: transport.AcceptOptions{ReadLimit: readLimit},
		Logger:        logger,
		Tree:          tree,
		Decode:        decode,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("chat: %w", err), tree.Shutdown(context.Background()))
	}
	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	s := &server{tree: tree, rooms: rooms, ws: ws, mux: http.NewServeMux()}
	s.mux.Handle("GET /ws", ws)
	s.mux.HandleFunc("GET /rooms", s.listRooms)
	s.mux.Handle("GET /", http.FileServerFS(page))
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Shutdown closes every WebSocket with 1001 (the pages reconnect), then
// stops the rooms. Call it before http.Server.Shutdown.
func (s *server) Shutdown(ctx context.Context) error {
	return errors.Join(s.ws.Shutdown(ctx), s.tree.Shutdown(ctx))
}

// listRooms answers GET /rooms with the open rooms and how many people are
// in each, for the page's room picker.
func (s *server) listRooms(w http.ResponseWriter, r *http.Request) {
	type entry struct {
		Name   string `json:"name"`
		People int    `json:"people"`
	}
	list := []entry{}
	for _, rm := range s.rooms.Rooms() {
		members, err := rm.Members(r.Context())
		if err != nil {
			continue // stopped meanwhile
		}
		if n := len(people(members)); n > 0 {
			list = append(list, entry{rm.Name(), n})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// people folds a member list (one per connection) into one entry per
// nickname, sorted.
func people(members []room.Member) []presence {
	tabs := map[string]int{}
	for _, m := range members {
		tabs[m.User]++
	}
	out := make([]presence, 0, len(tabs))
	for name, n := range tabs {
		out = append(out, presence{name, n})
	}
	slices.SortFunc(out, func(a, b presence) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// client is the behaviour of one chat connection. It joins one room, sends
// what its page says to the room, and keeps the room's member list up to
// date from the room's presence events. Its fields are touched only by
// Receive.
type client struct {
	rooms   *room.Registry
	conn    *actors.Conn
	room    *room.Room             // nil until the page joined
	name    string                 // the page's nickname, once joined
	members map[string]room.Member // the room's members by connection id
	strikes int                    // messages refused so far
}

func (c *client) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		c.conn = m.Conn
	case *actors.Message:
		in, ok := m.Value.(*inbound) // set by decode
		if !ok {
			return
		}
		switch in.Type {
		case "join":
			c.join(in)
		case "say":
			c.say(ctx, in)
		case "ping":
			c.send(outbound{Type: "pong"})
		default:
			c.refuse(fmt.Errorf("unknown message type %q", in.Type))
		}
	case *room.Joined:
		if c.room == nil || m.Room != c.room.Name() {
			return
		}
		if _, seen := c.members[m.Member.PID().Id]; seen {
			return // our own join, already in the snapshot
		}
		c.members[m.Member.PID().Id] = m.Member
		if m.First {
			c.send(outbound{Type: "joined", Room: m.Room, Name: m.Member.User})
		}
		c.sendPresence()
	case *room.Left:
		if c.room == nil || m.Room != c.room.Name() {
			return
		}
		delete(c.members, m.Member.PID().Id)
		if m.Last {
			c.send(outbound{Type: "left", Room: m.Room, Name: m.Member.User})
		}
		c.sendPresence()
	case *actors.Closed:
		// The room watches this actor: the others get *room.Left by itself.
		m.Conn.Logger().Info().Str("name", c.name).Int("code", int(m.Code)).AnErr("cause", m.Err).Msg("disconnected")
	}
}

// join puts the connection in the room the page asked for. Registry.Join
// makes the room on first use and waits for it, which blocks this
// connection (and nothing else) for a moment.
func (c *client) join(in *inbound) {
	if c.room != nil {
		c.refuse(fmt.Errorf("already in room %q: reconnect to change rooms", c.room.Name()))
		return
	}
	name, err := cleanName(in.Name)
	if err != nil {
		c.refuse(err)
		return
	}
	rname, err := cleanRoom(in.Room)
	if err != nil {
		c.refuse(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	// User groups a nickname's tabs: presence says when its first tab
	// arrives and its last one leaves.
	r, res, err := c.rooms.Join(ctx, rname, &room.Join{Conn: c.conn, User: name, Meta: name, Snapshot: true})
	if err != nil {
		c.send(outbound{Type: "error", Error: fmt.Sprintf("cannot join %s: %v", rname, err)})
		return
	}
	c.room, c.name = r, name
	c.members = make(map[string]room.Member, len(res.Members))
	for _, m := range res.Members {
		c.members[m.PID().Id] = m
	}
	c.conn.Logger().Info().Str("room", rname).Str("name", name).Msg("joined")
	c.send(outbound{Type: "welcome", Room: rname, Name: name})
	c.sendPresence()
}

// say broadcasts a chat message to the room, the sender included: one frame,
// encoded once, put in every member's queue.
func (c *client) say(ctx actor.Context, in *inbound) {
	if c.room == nil {
		c.refuse(errors.New("join a room first"))
		return
	}
	text, err := cleanText(in.Text)
	if err != nil {
		c.refuse(err)
		return
	}
	data, err := json.Marshal(outbound{Type: "message", Room: c.room.Name(), Name: c.name, Text: text, Time: time.Now().UnixMilli()})
	if err != nil {
		c.conn.Logger().Error().Err(err).Msg("encoding a message")
		return
	}
	ctx.Send(c.room.PID(), &room.Broadcast{Data: data})
}

func (c *client) sendPresence() {
	members := make([]room.Member, 0, len(c.members))
	for _, m := range c.members {
		members = append(members, m)
	}
	c.send(outbound{Type: "presence", Room: c.room.Name(), Members: people(members)})
}

// refuse answers a message the server does not accept with an error, and
// closes the connection with 1008 once the page has sent too many.
func (c *client) refuse(err error) {
	c.strikes++
	if c.strikes >= maxStrikes {
		c.conn.Close(actors.StatusPolicyViolation, "too many invalid messages")
		return
	}
	c.send(outbound{Type: "error", Error: err.Error()})
}

// send queues one message for this connection's page. It never blocks; if
// the page cannot keep up, the queue's policy closes the connection (1013)
// and the page reconnects.
func (c *client) send(m outbound) {
	data, err := json.Marshal(m)
	if err != nil {
		c.conn.Logger().Error().Err(err).Msg("encoding a message")
		return
	}
	if err := c.conn.Send(actors.Text, data); err != nil {
		c.conn.Logger().Debug().Err(err).Str("type", m.Type).Msg("not sent")
	}
}
