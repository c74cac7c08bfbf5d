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
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/transport"
)

//go:embed static
var static embed.FS

// The chat's rules. The channels protocol (docs/channels-protocol.md) is the
// wire; these are what this application accepts on it.
const (
	roomPrefix = "room:" // the only topics: "room:<name>"
	maxText    = 500     // characters in a chat message
	maxName    = 24      // characters in a nickname
	maxRoom    = 32      // characters in a room name
	history    = 50      // messages a room keeps for joins and recovery
	readLimit  = 8 << 10 // bytes in one message from a page
)

// Error codes of the chat's own refusals, next to the protocol's
// (channel.CodeBadRequest and the rest).
const (
	codeUnknownTopic = "unknown_topic" // a topic that is not "room:<name>"
	codeBadRoom      = "bad_room"      // "room:<name>" with a name out of the rules
	codeUnknownEvent = "unknown_event" // a push other than "msg"
	codeEmpty        = "empty"         // a message with nothing to say
	codeTooLong      = "too_long"      // a message over maxText characters
)

// message is the data of a "msg" event, as every member and the history get
// it.
type message struct {
	From string `json:"from"` // the sender's nickname
	Text string `json:"text"`
	Time int64  `json:"time"` // Unix milliseconds, the server's clock
}

// server is the chat application: a channel.Hub whose topics are the chat
// rooms, the browser client, and the page.
type server struct {
	hub   *channel.Hub
	store *channel.FileStore // nil when history lives in memory
	log   zerolog.Logger
	mux   *http.ServeMux

	mu     sync.Mutex
	people map[string]int // room name -> nicknames in it, kept by the rooms
}

// newServer builds the chat. With dataDir set, the rooms keep their history
// in a channel.FileStore there, so a restart of the process loses nothing
// and the pages recover what they missed; empty keeps it in memory.
func newServer(system *actor.ActorSystem, logger zerolog.Logger, dataDir string) (*server, error) {
	s := &server{log: logger, mux: http.NewServeMux(), people: map[string]int{}}
	opts := &channel.Options{
		AcceptOptions: transport.AcceptOptions{ReadLimit: readLimit},
		Logger:        logger,
		Authenticate:  authenticate,
		Authorize:     authorize,
		Topics: func(topic string) *channel.TopicOptions {
			return &channel.TopicOptions{
				History:     history,
				Presence:    true, // tabs of one nickname are one key with several metas
				IdleTimeout: time.Minute,
				MaxMembers:  1000,
				Handler: func(t *channel.Topic) actor.Actor {
					return &chatRoom{topic: t, name: strings.TrimPrefix(topic, roomPrefix), srv: s}
				},
			}
		},
	}
	if dataDir != "" {
		store, err := channel.NewFileStore(dataDir)
		if err != nil {
			return nil, fmt.Errorf("chat: %w", err)
		}
		s.store, opts.Store = store, store
	}
	hub, err := channel.NewHub(system, opts)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("chat: %w", err), s.closeStore())
	}
	s.hub = hub
	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /ws", hub)
	s.mux.Handle("GET /wsactor/", http.StripPrefix("/wsactor/", channel.ClientHandler()))
	s.mux.HandleFunc("GET /rooms", s.listRooms)
	s.mux.Handle("GET /", http.FileServerFS(page))
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Shutdown closes every WebSocket with 1001 (the pages reconnect), stops
// the rooms, then closes the history files. Call it before
// http.Server.Shutdown.
func (s *server) Shutdown(ctx context.Context) error {
	return errors.Join(s.hub.Close(ctx), s.closeStore())
}

func (s *server) closeStore() error {
	if s.store == nil {
		return nil
	}
	return s.store.Close()
}

// authenticate runs before the upgrade: the nickname in the URL
// (/ws?name=alice) is who the connection is. Tabs with one nickname are one
// user: one presence key, one rate budget. A bad nickname is refused with
// 400 (a page checks it before connecting).
func authenticate(r *http.Request) (channel.Identity, error) {
	name, err := cleanName(r.URL.Query().Get("name"))
	if err != nil {
		return channel.Identity{}, &transport.HTTPError{Status: http.StatusBadRequest, Err: err}
	}
	return channel.Identity{User: name}, nil
}

// authorize runs for every join: the only topics are chat rooms,
// "room:<name>", with names the rules allow.
func authorize(j *channel.JoinRequest) (channel.Authorization, error) {
	name, ok := strings.CutPrefix(j.Topic, roomPrefix)
	if !ok {
		return channel.Authorization{}, channel.Errorf(codeUnknownTopic, "no topic %q here: join room:<name>", j.Topic)
	}
	if !validRoom(name) {
		return channel.Authorization{}, channel.Errorf(codeBadRoom, "a room name is 1 to %d of a-z, 0-9, '-' and '_'", maxRoom)
	}
	return channel.Authorization{}, nil
}

// chatRoom is a room's behaviour: it runs on the room's topic actor, one
// message at a time, so its fields need no lock. The topic does the rest:
// history, recovery, presence.
type chatRoom struct {
	topic *channel.Topic
	name  string // the room's name, without "room:"
	srv   *server
}

func (c *chatRoom) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *channel.Push:
		c.push(m)
	case *channel.Joined:
		c.srv.log.Info().Str("room", c.name).Str("name", m.Member.User).Bool("recovered", m.Recovered).Msg("joined")
		c.count()
	case *channel.Left:
		c.srv.log.Info().Str("room", c.name).Str("name", m.Member.User).Stringer("reason", m.Reason).Msg("left")
		c.count()
	}
}

// push handles a page's "msg": the text is checked, stamped with the
// sender's nickname and the time, kept in history and sent to every member
// (the sender too) as one frame. The reply is the message's offset; a
// refusal is an error reply the page shows next to the input.
func (c *chatRoom) push(p *channel.Push) {
	if p.Event != "msg" {
		p.Fail(channel.Errorf(codeUnknownEvent, "no event %q: push msg", p.Event))
		return
	}
	var in struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(p.Data, &in); err != nil {
		p.Fail(channel.Errorf(channel.CodeBadRequest, `msg wants {"text": "..."}`))
		return
	}
	text, err := cleanText(in.Text)
	if err != nil {
		p.Fail(err)
		return
	}
	pos, err := c.topic.Publish("msg", message{From: p.From.User, Text: text, Time: time.Now().UnixMilli()})
	if err != nil {
		p.Fail(err)
		return
	}
	p.Reply(map[string]uint64{"offset": pos.Offset})
}

// count tells the server how many nicknames are in the room, for /rooms.
func (c *chatRoom) count() {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if n := len(c.topic.Presence()); n > 0 {
		c.srv.people[c.name] = n
	} else {
		delete(c.srv.people, c.name)
	}
}

// listRooms answers GET /rooms with the rooms people are in and how many
// (nicknames, not tabs), for the page's room picker.
func (s *server) listRooms(w http.ResponseWriter, _ *http.Request) {
	type entry struct {
		Name   string `json:"name"`
		People int    `json:"people"`
	}
	list := []entry{}
	s.mu.Lock()
	for _, topic := range s.hub.Topics() {
		name, _ := strings.CutPrefix(topic, roomPrefix)
		if n := s.people[name]; n > 0 {
			list = append(list, entry{name, n})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b entry) int { return cmp.Compare(a.Name, b.Name) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// cleanName returns the trimmed nickname, or why it is not one.
func cleanName(s string) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 || n > maxName || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("a nickname is 1 to %d printable characters", maxName)
	}
	return s, nil
}

// validRoom reports whether s is a room name: 1 to maxRoom of a-z, 0-9, '-'
// and '_'. Pages lower-case what people type.
func validRoom(s string) bool {
	return len(s) > 0 && len(s) <= maxRoom && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}

// cleanText returns the trimmed chat message, or the error reply for it.
func cleanText(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", channel.Errorf(codeEmpty, "say something")
	case n > maxText:
		return "", channel.Errorf(codeTooLong, "a message is at most %d characters", maxText)
	}
	return s, nil
}
