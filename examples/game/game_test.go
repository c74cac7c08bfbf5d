package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/exampletest"
)

// towardCentre is the direction from v toward the middle of [0, size].
func towardCentre(v, size int) int {
	if v < size/2 {
		return 1
	}
	return -1
}

// TestGamePlayersSeeEachOther: two players steer; each sees both dots move
// in the snapshots, whose ticks only go forward.
func TestGamePlayersSeeEachOther(t *testing.T) {
	_, url := startServer(t, config{Tick: 5 * time.Millisecond}, 0)
	a, b := dial(t, url), dial(t, url)
	wa, wb := a.welcome(), b.welcome()

	// Where both start, as a's first snapshot with both shows it.
	var startA, startB player
	for {
		s := a.snapshot()
		var okA, okB bool
		startA, okA = find(s, wa.ID)
		startB, okB = find(s, wb.ID)
		if okA && okB {
			break
		}
	}
	dx := towardCentre(startA.X, boardWidth)
	dy := towardCentre(startB.Y, boardHeight)
	a.send(command{Type: "input", DX: dx})
	b.send(command{Type: "input", DY: dy})

	const far = 4 * speed
	for _, c := range []*client{a, b} {
		var last uint64
		for {
			s := c.snapshot()
			if s.Tick <= last {
				t.Fatalf("tick %d after tick %d", s.Tick, last)
			}
			last = s.Tick
			pa, okA := find(s, wa.ID)
			pb, okB := find(s, wb.ID)
			if !okA || !okB {
				continue
			}
			if pa.Y != startA.Y || pb.X != startB.X {
				t.Fatalf("moved off axis: %+v from %+v, %+v from %+v", pa, startA, pb, startB)
			}
			if (pa.X-startA.X)*dx >= far && (pb.Y-startB.Y)*dy >= far {
				break // this client saw both move
			}
		}
	}
	a.send(command{Type: "input"}) // stop
}

// TestGameSlowClientConflates: a player that stops reading does not make the
// server queue snapshots for it. Once its socket is full, its outbound
// queue holds one snapshot, the latest (the frames are keyed), however many
// ticks pass, while the other player keeps getting fresh snapshots. When
// the slow player reads again, it catches up to the present instead of
// working through a backlog.
func TestGameSlowClientConflates(t *testing.T) {
	app, url := startServer(t, config{Tick: time.Millisecond}, 32<<10)
	fast := dial(t, url)
	fast.welcome()
	slow := dial(t, url)
	slow.welcome()

	// The server side of the slow player's connection.
	members, err := app.board.Members(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var buffered func() (int, int)
	for _, m := range members {
		if c := m.Conn.(*actors.Conn); c.RemoteAddr().String() == slow.c.LocalAddr().String() {
			buffered = c.Buffered
		}
	}
	if buffered == nil {
		t.Fatal("the slow player is not on the board")
	}

	// slow reads nothing from here on. While the kernel buffers fill, its
	// writer keeps up; then the writer blocks and a snapshot waits in the
	// queue at every look. It is never more than one.
	check := func() int {
		t.Helper()
		msgs, bytes := buffered()
		if msgs > 1 || bytes > 1024 {
			t.Fatalf("slow player's queue holds %d messages, %d bytes; want at most one snapshot", msgs, bytes)
		}
		return msgs
	}
	var last uint64
	deadline := time.Now().Add(waitTimeout)
	for streak := 0; streak < 100; {
		if time.Now().After(deadline) {
			t.Fatal("the slow player's socket never filled up")
		}
		last = fast.snapshot().Tick
		if check() == 1 {
			streak++
		} else {
			streak = 0
		}
	}
	stalled := last
	for range 300 { // the fast player is not held back
		s := fast.snapshot()
		if s.Tick <= last {
			t.Fatalf("fast player: tick %d after tick %d", s.Tick, last)
		}
		last = s.Tick
		check()
	}

	// Reading again, the slow player drains what the sockets held, then
	// gets the present; it was never disconnected.
	stale := 0
	for deadline := time.Now().Add(waitTimeout); slow.snapshot().Tick < last; stale++ {
		if time.Now().After(deadline) {
			t.Fatal("the slow player did not catch up")
		}
	}
	t.Logf("slow player stalled from tick %d to %d with at most one snapshot queued; caught up after %d stale snapshots from socket buffers", stalled, last, stale)
}

// TestGameRefusesBadInput: input outside the protocol closes that
// connection with a clear code; the other player plays on.
func TestGameRefusesBadInput(t *testing.T) {
	_, url := startServer(t, config{Tick: 5 * time.Millisecond}, 0)
	bystander := dial(t, url)
	bystander.welcome()

	tests := []struct {
		name string
		send string
		want int
	}{
		{"not JSON", "up up down down", websocket.CloseInvalidFramePayloadData},
		{"out of range", `{"type":"input","dx":5}`, websocket.ClosePolicyViolation},
		{"unknown type", `{"type":"teleport","dx":1}`, websocket.ClosePolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, url)
			c.welcome()
			_ = c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
			if err := c.c.WriteMessage(websocket.TextMessage, []byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if ce := c.closed(); ce.Code != tc.want || ce.Text == "" {
				t.Fatalf("closed with %d %q, want %d and a reason", ce.Code, ce.Text, tc.want)
			}
		})
	}
	// Still ticking for the bystander, who is alone again.
	for {
		if s := bystander.snapshot(); len(s.Players) == 1 {
			break
		}
	}
}

// TestGameFull: a player past MaxPlayers is told to come back later (1013).
func TestGameFull(t *testing.T) {
	_, url := startServer(t, config{Tick: 5 * time.Millisecond, MaxPlayers: 1}, 0)
	dial(t, url).welcome()
	if ce := dial(t, url).closed(); ce.Code != websocket.CloseTryAgainLater || !strings.Contains(ce.Text, "full") {
		t.Fatalf("closed with %d %q, want 1013 and \"full\"", ce.Code, ce.Text)
	}
}

// TestGameRun: the command serves the page and the game, and on SIGINT
// closes every player's connection with 1001 and returns nil.
func TestGameRun(t *testing.T) {
	g := startRun(t, "-tick", "5ms")
	defer http.DefaultClient.CloseIdleConnections()
	if page := exampletest.Get(t, g.URL+"/"); !strings.Contains(page, "<title>wsactor game</title>") {
		t.Fatalf("GET / is not the game page:\n%s", page)
	}
	if js := exampletest.Get(t, g.URL+"/game.js"); !strings.Contains(js, "new WebSocket") {
		t.Fatal("GET /game.js is not the page's script")
	}
	c := dial(t, "ws"+strings.TrimPrefix(g.URL, "http")+"/ws")
	w := c.welcome()
	if _, ok := find(c.snapshot(), w.ID); !ok {
		t.Fatal("the player is not in the snapshot")
	}
	// Read while the server shuts down: gorilla answers the close frame,
	// which completes the closing handshake Shutdown waits for.
	closed := make(chan int, 1)
	go func() {
		_ = c.c.SetReadDeadline(time.Now().Add(waitTimeout))
		for {
			if _, _, err := c.c.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					closed <- ce.Code
				}
				close(closed)
				return
			}
		}
	}()
	if err := g.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if code := <-closed; code != websocket.CloseGoingAway {
		t.Fatalf("closed with %d, want 1001", code)
	}
}
