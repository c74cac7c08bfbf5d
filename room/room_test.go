package room_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/probe"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
)

// TestManyClientsManyRooms puts 1,000 clients in 10 rooms; in each room 10
// clients broadcast 5 messages each. Every client must receive each of its
// room's 50 broadcasts exactly once, nothing from other rooms, every
// sender's messages in the order sent, and the same sequence as every other
// member of its room (the ordering guarantee).
func TestManyClientsManyRooms(t *testing.T) {
	const (
		rooms   = 10
		perRoom = 100
		senders = 10
		msgs    = 5
	)
	e := newEnv(t, envConfig{})

	// Dial and join with a few workers; each client waits for its
	// "joined" so every member is in before the first broadcast.
	clients := make([][]*websocket.Conn, rooms)
	for r := range clients {
		clients[r] = make([]*websocket.Conn, perRoom)
	}
	type job struct{ r, i int }
	jobs := make(chan job)
	errs := make(chan error, rooms*perRoom)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				c, err := dialErr(e, fmt.Sprintf("room=r%d", j.r), nil)
				if err != nil {
					errs <- err
					continue
				}
				clients[j.r][j.i] = c
				if s, err := readErr(c); err != nil || s != fmt.Sprintf("joined r%d", j.r) {
					errs <- fmt.Errorf("client %d/%d: got %q, %v", j.r, j.i, s, err)
				}
			}
		}()
	}
	for r := range rooms {
		for i := range perRoom {
			jobs <- job{r, i}
		}
	}
	close(jobs)
	wg.Wait()
	t.Cleanup(func() {
		for _, cs := range clients {
			for _, c := range cs {
				if c != nil {
					c.Close()
				}
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	if got := len(e.reg.Rooms()); got != rooms {
		t.Fatalf("registry has %d rooms, want %d", got, rooms)
	}
	ctx := testCtx(t)
	for _, r := range e.reg.Rooms() {
		ms, err := r.Members(ctx)
		if err != nil || len(ms) != perRoom {
			t.Fatalf("room %s: %d members, %v; want %d", r.Name(), len(ms), err, perRoom)
		}
	}

	for m := range msgs {
		for r := range rooms {
			for s := range senders {
				write(t, clients[r][s], fmt.Sprintf("all r%d:s%d:m%d", r, s, m))
			}
		}
	}

	for r := range rooms {
		var ref []string
		for i, c := range clients[r] {
			got := make([]string, 0, senders*msgs)
			for range senders * msgs {
				got = append(got, read(t, c))
			}
			if i == 0 {
				checkRoomSequence(t, r, got, senders, msgs)
				ref = got
				continue
			}
			for k := range got {
				if got[k] != ref[k] {
					t.Fatalf("room r%d client %d: message %d is %q, member 0 got %q: members disagree on order", r, i, k, got[k], ref[k])
				}
			}
		}
	}
}

// checkRoomSequence checks one member's view of a room: each sender's
// messages exactly once and in order, and nothing from another room.
func checkRoomSequence(t *testing.T, r int, got []string, senders, msgs int) {
	t.Helper()
	next := make([]int, senders)
	for _, s := range got {
		var gr, gs, gm int
		if _, err := fmt.Sscanf(s, "r%d:s%d:m%d", &gr, &gs, &gm); err != nil {
			t.Fatalf("room r%d: bad message %q", r, s)
		}
		if gr != r {
			t.Fatalf("room r%d: got %q from another room", r, s)
		}
		if gm != next[gs] {
			t.Fatalf("room r%d: sender %d: got m%d, want m%d (lost, duplicated or reordered)", r, gs, gm, next[gs])
		}
		next[gs]++
	}
	for s, n := range next {
		if n != msgs {
			t.Fatalf("room r%d: sender %d: %d of %d messages", r, s, n, msgs)
		}
	}
}

func TestBroadcastExceptExcludesOnlyTheSender(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	a := dial(t, e, "room=x", nil)
	expect(t, a, "joined x")
	b := dial(t, e, "room=x", nil)
	expect(t, b, "joined x")
	c := dial(t, e, "room=x", nil)
	expect(t, c, "joined x")

	write(t, a, "others hello")
	write(t, a, "all marker") // same sender: handled after the first
	for _, cl := range []*websocket.Conn{b, c} {
		expect(t, cl, "hello")
		expect(t, cl, "marker")
	}
	expect(t, a, "marker") // not "hello"

	write(t, b, "others from-b")
	write(t, b, "all marker2")
	expect(t, a, "from-b")
	expect(t, a, "marker2")
	expect(t, c, "from-b")
	expect(t, c, "marker2")
	expect(t, b, "marker2")
}

// TestKilledMemberLeaves: a member whose connection ends without Leave
// vanishes from the room's members, from presence (the others get Left
// with LeftStopped), and from the registry's room count.
func TestKilledMemberLeaves(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kill func(t *testing.T, e *env, c *websocket.Conn, conn *actors.Conn)
	}{
		{"client TCP reset", func(t *testing.T, _ *env, c *websocket.Conn, _ *actors.Conn) {
			tcp := c.NetConn().(*net.TCPConn)
			_ = tcp.SetLinger(0) // RST, no close frame
			_ = tcp.Close()
		}},
		{"connection actor stopped", func(t *testing.T, e *env, _ *websocket.Conn, conn *actors.Conn) {
			e.system.Root.Stop(conn.PID())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envConfig{opened: 4, registry: &room.RegistryOptions{
				Options: func(string) *room.Options { return &room.Options{Presence: true} },
			}})
			obs := dial(t, e, "room=p&name=obs", nil)
			<-e.opened
			expect(t, obs, "joined p")
			expect(t, obs, "+obs first=true")
			victim := dial(t, e, "room=p&name=victim", nil)
			vconn := <-e.opened
			expect(t, victim, "joined p")
			expect(t, victim, "+victim first=true")
			expect(t, obs, "+victim first=true")
			if n := e.reg.RoomCount(vconn.PID()); n != 1 {
				t.Fatalf("victim in %d rooms, want 1", n)
			}

			tt.kill(t, e, victim, vconn)

			expect(t, obs, "-victim last=true stopped")
			r, ok := e.reg.Lookup("p")
			if !ok {
				t.Fatal("room p gone")
			}
			ms, err := r.Members(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0].Meta != "obs" {
				t.Fatalf("members after kill: %v, want only obs", metas(ms))
			}
			if n := e.reg.RoomCount(vconn.PID()); n != 0 {
				t.Fatalf("victim still counted in %d rooms", n)
			}
			// The room still broadcasts to the survivor.
			write(t, obs, "all still-here")
			expect(t, obs, "still-here")
		})
	}
}

// TestStoppedConnectionJoinsAndLeaves: a Join of a connection whose actor
// has already stopped (a Join racing the connection's end) leaves at once
// with LeftStopped, as it would under protoactor's Watch; nothing keeps it.
func TestStoppedConnectionJoinsAndLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{opened: 2})
	c := dial(t, e, "", nil) // in no room
	conn := <-e.opened
	ctx := testCtx(t)
	stopped := make(chan struct{})
	w := e.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Terminated); ok {
			close(stopped)
		}
	}))
	defer e.system.Root.Stop(w)
	if !conn.NotifyStopped(w) {
		t.Fatal("live connection refused a watcher")
	}
	_ = c.Close()
	<-stopped

	r, err := e.reg.Get(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join(ctx, &room.Join{Conn: conn}); err != nil {
		t.Fatalf("Join: %v", err)
	}
	ms, err := r.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 0 {
		t.Fatalf("a stopped connection is still a member: %v", ms)
	}
	if n := e.reg.RoomCount(conn.PID()); n != 0 {
		t.Fatalf("stopped connection counted in %d rooms", n)
	}
}

// TestDeflateAndPlainMembersShareOneBroadcast: one broadcast to members with
// and without permessage-deflate is compressed exactly once and every member
// gets the right payload.
func TestDeflateAndPlainMembersShareOneBroadcast(t *testing.T) {
	// Not parallel: transport.Compressions is process-wide.
	e := newEnv(t, envConfig{opened: 4, handler: &actors.HandlerOptions{AcceptOptions: transport.AcceptOptions{
		Compression: transport.CompressionEnabled, CompressionThreshold: -1,
	}}})
	deflate := &websocket.Dialer{EnableCompression: true}
	plain := &websocket.Dialer{EnableCompression: false}
	clients := []*websocket.Conn{
		dial(t, e, "room=z", deflate),
		dial(t, e, "room=z", plain),
		dial(t, e, "room=z", deflate),
	}
	var compressed []bool
	for _, c := range clients {
		expect(t, c, "joined z") // written (and compressed) before we count
		compressed = append(compressed, (<-e.opened).Compressed())
	}
	if n := countTrue(compressed); n != 2 {
		t.Fatalf("%d members negotiated deflate, want 2", n)
	}

	payload := bytes.Repeat([]byte("the same bytes for everyone "), 200)
	r, _ := e.reg.Lookup("z")
	before := probe.Compressions.Load()
	r.Broadcast(transport.MessageText, payload)
	for i, c := range clients {
		_ = c.SetReadDeadline(deadline())
		typ, p, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || !bytes.Equal(p, payload) {
			t.Fatalf("client %d: type %d, %d bytes, %v; want the %d-byte payload", i, typ, len(p), err, len(payload))
		}
	}
	if d := probe.Compressions.Load() - before; d != 1 {
		t.Fatalf("one broadcast to 2 deflate and 1 plain members ran %d compressions, want 1", d)
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func TestPresence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{registry: &room.RegistryOptions{
		Options: func(string) *room.Options { return &room.Options{Presence: true} },
	}})
	a1 := dial(t, e, "room=p&user=alice&name=alice", nil)
	expect(t, a1, "joined p")
	expect(t, a1, "+alice first=true")

	b := dial(t, e, "room=p&user=bob&name=bob&snapshot=1", nil)
	expect(t, b, "joined p [alice bob]") // snapshot on join
	expect(t, b, "+bob first=true")
	expect(t, a1, "+bob first=true")

	a2 := dial(t, e, "room=p&user=alice&name=alice", nil)
	expect(t, a2, "joined p")
	for _, c := range []*websocket.Conn{a1, b, a2} {
		expect(t, c, "+alice first=false") // alice's second tab
	}

	// alice's second tab closes: she is still there.
	_ = a2.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline())
	expect(t, a1, "-alice last=false stopped")
	expect(t, b, "-alice last=false stopped")

	// alice's first tab leaves: now she is gone.
	write(t, a1, "leave")
	expect(t, b, "-alice last=true leave")

	r, _ := e.reg.Lookup("p")
	ms, err := r.Members(testCtx(t))
	if err != nil || len(ms) != 1 || ms[0].User != "bob" || ms[0].Meta != "bob" {
		t.Fatalf("members = %v, %v; want bob", ms, err)
	}
	// a1 is no longer a member: a broadcast reaches only b.
	write(t, b, "all only-bob")
	expect(t, b, "only-bob")
	r.Broadcast(transport.MessageText, []byte("second"))
	expect(t, b, "second")
}

func TestDirectSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{opened: 4})
	a := dial(t, e, "room=d&name=a", nil)
	<-e.opened
	expect(t, a, "joined d")
	b := dial(t, e, "room=d&name=b", nil)
	bconn := <-e.opened
	expect(t, b, "joined d")

	r, _ := e.reg.Lookup("d")
	r.Tell(&room.Send{To: bconn.PID(), Data: []byte("just for b")})
	r.Tell(&room.Send{To: &actor.PID{Address: "nonhost", Id: "nobody"}, Data: []byte("dropped")})
	r.Tell(&room.Send{Data: []byte("no To: dropped")})
	r.Broadcast(transport.MessageText, []byte("for all"))
	expect(t, b, "just for b")
	expect(t, b, "for all")
	expect(t, a, "for all")
}

// TestJoinErrors: bad joins are answered with an error, never a panic.
func TestJoinErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{opened: 4, registry: &room.RegistryOptions{
		Options: func(name string) *room.Options {
			if name == "small" {
				return &room.Options{MaxMembers: 1}
			}
			return nil
		},
	}})
	ctx := testCtx(t)
	r, err := e.reg.Get(ctx, "lobby")
	if err != nil {
		t.Fatal(err)
	}

	// Sent as a message with a request: answered with the error.
	res, ok := ask(t, e.system, r.PID(), &room.Join{}).(*room.JoinResult)
	if !ok || !errors.Is(res.Err, room.ErrNoConn) || res.Room != "lobby" {
		t.Fatalf("Join without Conn answered %+v, want ErrNoConn", res)
	}
	// Through the handle.
	if _, err := r.Join(ctx, &room.Join{}); !errors.Is(err, room.ErrNoConn) {
		t.Fatalf("Room.Join without Conn: %v, want ErrNoConn", err)
	}
	if _, err := r.Join(ctx, nil); !errors.Is(err, room.ErrNoConn) {
		t.Fatalf("Room.Join(nil): %v, want ErrNoConn", err)
	}
	// Sent without a request: dropped, the room lives on.
	r.Tell(&room.Join{})
	r.Tell(&room.Leave{})
	r.Tell(&room.Broadcast{})
	r.Tell("a message nobody handles")
	if ms, err := r.Members(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("members %v, %v", ms, err)
	}

	for _, name := range []string{"", "a/b"} {
		if _, err := e.reg.Get(ctx, name); !errors.Is(err, room.ErrInvalidName) {
			t.Fatalf("Get(%q): %v, want ErrInvalidName", name, err)
		}
	}

	// A full room.
	dial(t, e, "", nil)
	c1 := <-e.opened
	dial(t, e, "", nil)
	c2 := <-e.opened
	if _, _, err := e.reg.Join(ctx, "small", &room.Join{Conn: c1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.Join(ctx, "small", &room.Join{Conn: c2}); !errors.Is(err, room.ErrRoomFull) {
		t.Fatalf("join of a full room: %v, want ErrRoomFull", err)
	}
	if n := e.reg.RoomCount(c2.PID()); n != 0 {
		t.Fatalf("refused join counted: %d", n)
	}
	// Joining again only updates Meta.
	small, res2, err := e.reg.Join(ctx, "small", &room.Join{Conn: c1, Meta: "again", Snapshot: true})
	if err != nil || len(res2.Members) != 1 || res2.Members[0].Meta != "again" {
		t.Fatalf("re-join: %+v, %v", res2, err)
	}
	if n := e.reg.RoomCount(c1.PID()); n != 1 {
		t.Fatalf("re-join counted twice: %d", n)
	}
	_ = small
}

// TestRoomLimit: a connection can be in at most MaxRoomsPerConn rooms of a
// registry (128 by default); leaving or a room stopping frees a slot.
func TestRoomLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opt   int
		limit int
	}{
		{"default", 0, room.DefaultMaxRoomsPerConn},
		{"three", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envConfig{opened: 2, registry: &room.RegistryOptions{MaxRoomsPerConn: tc.opt}})
			dial(t, e, "", nil)
			conn := <-e.opened
			ctx := testCtx(t)
			var first *room.Room
			for i := range tc.limit {
				r, _, err := e.reg.Join(ctx, "r"+strconv.Itoa(i), &room.Join{Conn: conn})
				if err != nil {
					t.Fatalf("join %d: %v", i, err)
				}
				if i == 0 {
					first = r
				}
			}
			_, _, err := e.reg.Join(ctx, "one-too-many", &room.Join{Conn: conn})
			if !errors.Is(err, room.ErrTooManyRooms) {
				t.Fatalf("join past the limit: %v, want ErrTooManyRooms", err)
			}
			if n := e.reg.RoomCount(conn.PID()); n != tc.limit {
				t.Fatalf("RoomCount = %d, want %d", n, tc.limit)
			}

			// Leave frees a slot (Members is handled after the Leave).
			first.Leave(conn.PID())
			if _, err := first.Members(ctx); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.reg.Join(ctx, "one-too-many", &room.Join{Conn: conn}); err != nil {
				t.Fatalf("join after a leave: %v", err)
			}
			// A stopped room frees its members' slots.
			r1, _ := e.reg.Lookup("r1")
			if err := r1.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.reg.Lookup("r1"); ok {
				t.Fatal("stopped room still listed")
			}
			if n := e.reg.RoomCount(conn.PID()); n != tc.limit-1 {
				t.Fatalf("RoomCount after a room stopped = %d, want %d", n, tc.limit-1)
			}
			if _, err := r1.Members(ctx); !errors.Is(err, room.ErrStopped) {
				t.Fatalf("Members of a stopped room: %v, want ErrStopped", err)
			}
			if _, err := r1.Join(ctx, &room.Join{Conn: conn}); !errors.Is(err, room.ErrStopped) {
				t.Fatalf("Join of a stopped room: %v, want ErrStopped", err)
			}
		})
	}
}

func deadline() time.Time { return time.Now().Add(10 * time.Second) }

// TestSpawn: rooms made without a registry.
func TestSpawn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{opened: 1})
	c := dial(t, e, "", nil)
	conn := <-e.opened
	ctx := testCtx(t)

	r, err := room.Spawn(ctx, e.tree, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() == "" || r.PID() == nil {
		t.Fatalf("generated room: name %q, pid %v", r.Name(), r.PID())
	}
	res, err := r.Join(ctx, &room.Join{Conn: conn, Meta: 7})
	if err != nil || res.Room != r.Name() || res.Member.Meta != 7 || !res.Member.PID().Equal(conn.PID()) {
		t.Fatalf("join: %+v, %v", res, err)
	}
	if n := e.reg.RoomCount(conn.PID()); n != 0 {
		t.Fatalf("a Spawn room counted in a registry: %d", n)
	}
	r.Tell(&room.Broadcast{Type: transport.MessageBinary, Data: []byte{1, 2, 3}})
	_ = c.SetReadDeadline(deadline())
	if typ, p, err := c.ReadMessage(); err != nil || typ != websocket.BinaryMessage || !bytes.Equal(p, []byte{1, 2, 3}) {
		t.Fatalf("read: %d %v %v", typ, p, err)
	}

	if _, err := room.Spawn(ctx, e.tree, "named", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := room.Spawn(ctx, e.tree, "named", nil); !errors.Is(err, actor.ErrNameExists) {
		t.Fatalf("second room with one name: %v, want actor.ErrNameExists", err)
	}
	if _, err := room.Spawn(ctx, e.tree, "a/b", nil); !errors.Is(err, room.ErrInvalidName) {
		t.Fatalf("Spawn(a/b): %v, want ErrInvalidName", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
