package room_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/wsactortest"
)

func TestMain(m *testing.M) { wsactortest.VerifyTestMain(m) }

// env is a server on loopback (or, with envConfig.pipe, on an in-memory
// network): an actor system, a supervision tree shared by the Handler and a
// room Registry, and an httptest server (or a wsactortest.Server).
type env struct {
	system *actor.ActorSystem
	tree   *supervisor.Tree
	reg    *room.Registry
	h      *actors.Handler
	url    string
	opened chan *actors.Conn // every opened server connection, if not nil
	net    *wsactortest.Net  // with envConfig.pipe: the network dial uses
}

type envConfig struct {
	handler  *actors.HandlerOptions
	registry *room.RegistryOptions
	// behave makes the connection behaviour; nil means peer.
	behave func(e *env) actor.Actor
	// opened, if positive, is the capacity of env.opened.
	opened int
	// logger defaults to the test's log at info level.
	logger *zerolog.Logger
	// pipe serves on an in-memory network (wsactortest.Server) instead of
	// loopback: with it, newEnv may be called in a testing/synctest bubble,
	// and the whole server (handshakes, connection actors, rooms, timers)
	// runs on fake time.
	pipe bool
	// pipeBuffer, with pipe, is each direction's buffer in bytes (zero:
	// wsactortest.DefaultBuffer).
	pipeBuffer int
}

// newEnv starts a server and registers its shutdown: the Handler first
// (httptest's Close does not wait for hijacked connections), then the tree.
func newEnv(tb testing.TB, cfg envConfig) *env {
	tb.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.InfoLevel)
	if cfg.logger != nil {
		logger = *cfg.logger
	}
	e := &env{system: actors.NewSystem(logger.Level(zerolog.WarnLevel))}
	if cfg.opened > 0 {
		e.opened = make(chan *actors.Conn, cfg.opened)
	}
	tree, err := supervisor.New(e.system)
	if err != nil {
		tb.Fatalf("supervisor: %v", err)
	}
	e.tree = tree
	ro := room.RegistryOptions{}
	if cfg.registry != nil {
		ro = *cfg.registry
	}
	ro.Logger = logger
	e.reg = room.NewRegistry(tree, &ro)
	ho := actors.HandlerOptions{}
	if cfg.handler != nil {
		ho = *cfg.handler
	}
	ho.Logger = logger
	ho.Tree = tree
	behave := cfg.behave
	if behave == nil {
		behave = func(e *env) actor.Actor { return &peer{e: e} }
	}
	h, err := actors.NewHandler(e.system, func() actor.Actor { return behave(e) }, &ho)
	if err != nil {
		tb.Fatal(err)
	}
	e.h = h
	closeServer := func() {}
	if cfg.pipe {
		srv := wsactortest.NewServer(e.h)
		srv.Net.Buffer = cfg.pipeBuffer
		e.url, e.net, closeServer = srv.URL, srv.Net, srv.Close
	} else {
		srv := httptest.NewServer(e.h)
		e.url, closeServer = "ws"+strings.TrimPrefix(srv.URL, "http"), srv.Close
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := e.h.Shutdown(ctx); err != nil {
			tb.Errorf("handler shutdown: %v\n%s", err, stacks())
		}
		if err := e.tree.Shutdown(ctx); err != nil {
			tb.Errorf("tree shutdown: %v\n%s", err, stacks())
		}
		closeServer()
		if cfg.pipe {
			// In a synctest bubble: let protoactor's dead-letter throttle
			// goroutine end before the bubble does (fake time).
			time.Sleep(e.system.Config.DeadLetterThrottleInterval)
		}
	})
	return e
}

func stacks() []byte {
	buf := make([]byte, 1<<20)
	return buf[:runtime.Stack(buf, true)]
}

// peer is the server-side behaviour of a test connection. The upgrade
// request's query says what it does when opened: room (join it through the
// registry), user, name (the member's Meta), snapshot. It reports the
// room's answers and presence events to its client as text, and turns the
// client's text commands into room messages:
//
//	all <text>     broadcast to everyone
//	others <text>  broadcast to everyone but me
//	leave          leave the room
//	anything else  sent to the room as *input (for a room behaviour)
type peer struct {
	e    *env
	conn *actors.Conn
	room *room.Room
}

// input is what a peer sends to its room for anything that is not a
// command: a stateful room's behaviour receives it.
type input struct {
	conn *actors.Conn
	user string
	text string
}

func (p *peer) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		p.conn = m.Conn
		if p.e.opened != nil {
			p.e.opened <- m.Conn
		}
		q := m.Conn.Request().URL.Query()
		name := q.Get("room")
		if name == "" {
			return
		}
		r, err := p.e.reg.Get(context.Background(), name)
		if err != nil {
			_ = m.Conn.SendText("error " + err.Error())
			return
		}
		p.room = r
		ctx.Request(r.PID(), &room.Join{Conn: m.Conn, User: q.Get("user"), Meta: q.Get("name"), Snapshot: q.Has("snapshot")})
	case *room.JoinResult:
		if m.Err != nil {
			_ = p.conn.SendText("error " + m.Err.Error())
			return
		}
		text := "joined " + m.Room
		if m.Members != nil {
			text += " [" + strings.Join(metas(m.Members), " ") + "]"
		}
		_ = p.conn.SendText(text)
	case *room.Joined:
		_ = p.conn.SendText(fmt.Sprintf("+%v first=%v", m.Member.Meta, m.First))
	case *room.Left:
		_ = p.conn.SendText(fmt.Sprintf("-%v last=%v %v", m.Member.Meta, m.Last, m.Reason))
	case *actors.Message:
		if p.room == nil {
			return
		}
		cmd, arg, _ := strings.Cut(m.Text(), " ")
		switch cmd {
		case "all":
			ctx.Send(p.room.PID(), &room.Broadcast{Data: []byte(arg)})
		case "others":
			ctx.Send(p.room.PID(), &room.Broadcast{Data: []byte(arg), Except: m.Conn.PID()})
		case "leave":
			ctx.Send(p.room.PID(), &room.Leave{Conn: m.Conn})
		default:
			ctx.Send(p.room.PID(), &input{conn: m.Conn, user: m.Conn.Request().URL.Query().Get("user"), text: m.Text()})
		}
	}
}

func metas(ms []room.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprint(m.Meta)
	}
	sort.Strings(out)
	return out
}

// dial connects a gorilla client to the env with query q and registers its
// close.
func dial(tb testing.TB, e *env, q string, d *websocket.Dialer) *websocket.Conn {
	tb.Helper()
	c, err := dialErr(e, q, d)
	if err != nil {
		tb.Fatalf("dial %q: %v", q, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func dialErr(e *env, q string, d *websocket.Dialer) (*websocket.Conn, error) {
	if d == nil {
		d = websocket.DefaultDialer
	}
	if e.net != nil {
		dd := *d
		dd.NetDialContext = e.net.Dial
		d = &dd
	}
	u := e.url
	if q != "" {
		u += "?" + q
	}
	c, _, err := d.Dial(u, nil)
	return c, err
}

// read returns the next text message, failing the test after 10s.
func read(tb testing.TB, c *websocket.Conn) string {
	tb.Helper()
	s, err := readErr(c)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return s
}

func readErr(c *websocket.Conn) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, p, err := c.ReadMessage()
	return string(p), err
}

func write(tb testing.TB, c *websocket.Conn, s string) {
	tb.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		tb.Fatalf("write %q: %v", s, err)
	}
}

// expect reads one message and fails unless it is want.
func expect(tb testing.TB, c *websocket.Conn, want string) {
	tb.Helper()
	if got := read(tb, c); got != want {
		tb.Fatalf("got %q, want %q", got, want)
	}
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// ask sends msg to pid with a request from a short-lived actor and returns
// the answer (protoactor futures are avoided: see the research notes).
func ask(tb testing.TB, system *actor.ActorSystem, pid *actor.PID, msg any) any {
	tb.Helper()
	got := make(chan any, 1)
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Request(pid, msg)
		case *actor.Stopping, *actor.Stopped:
		default:
			got <- m
			ctx.Stop(ctx.Self())
		}
	})
	system.Root.Spawn(props)
	select {
	case m := <-got:
		return m
	case <-time.After(10 * time.Second):
		tb.Fatalf("no answer to %T", msg)
		return nil
	}
}
