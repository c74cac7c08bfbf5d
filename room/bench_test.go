package room_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/probe"
	"github.com/wsactor/wsactor/internal/wstest"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// BenchmarkBroadcast measures one room broadcasting a 1 KiB text message to
// N members: one op is one broadcast, timed until every member's client has
// read it. Every other member (the first included) negotiated
// permessage-deflate; compression threshold 512 bytes, so every broadcast is
// compressed for them and sent plain to the others.
//
// Members are real connection actors with real transport.Conns, writers and
// queues. Their clients read raw frames without allocating, so the
// allocations counted are the server's. The "tcp" cases use loopback
// sockets; 10,000 of them would need 20,000 descriptors in this process
// (the limit here is 20,000), so the "pipe" cases connect each member
// through net.Pipe instead (the handshake goes through the same Handler;
// only the kernel socket is missing).
//
// The "/mailbox" cases are the design the room does not use, for
// comparison: one protoactor message (*actors.Send carrying the shared
// frame) per member, handled by each connection actor.
//
// Extra metrics:
//
//	allocs/recipient        heap allocations per member per broadcast (whole process)
//	compressions/broadcast  deflate runs per broadcast (transport.Compressions)
//	room-ns/recipient       time the room spends fanning out, per member
//	ns/recipient            end-to-end time per member per broadcast
func BenchmarkBroadcast(b *testing.B) {
	for _, tc := range []struct {
		net     string
		n       int
		mailbox bool
	}{
		{"tcp", 1, false}, {"tcp", 100, false},
		{"pipe", 1, false}, {"pipe", 100, false}, {"pipe", 10000, false},
		{"pipe", 100, true}, {"pipe", 10000, true},
	} {
		name := fmt.Sprintf("%s/members=%d", tc.net, tc.n)
		if tc.mailbox {
			name += "/mailbox"
		}
		var fx *fixture
		b.Run(name, func(b *testing.B) {
			if fx == nil {
				fx = newFixture(b, tc.net, tc.n, tc.mailbox)
			}
			fx.run(b)
		})
		if fx != nil {
			fx.close(b)
		}
	}
}

// benchPayload is 1 KiB of compressible JSON-ish text.
var benchPayload = func() []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < 1024; i++ {
		fmt.Fprintf(&buf, `{"player":%d,"x":%d,"y":%d},`, i, i*7%100, i*13%100)
	}
	return buf.Bytes()[:1024]
}()

// benchBroadcast asks the benchmark room's behaviour for one broadcast.
type benchBroadcast struct{}

type fixture struct {
	n       int
	system  *actor.ActorSystem
	tree    *supervisor.Tree
	h       *actors.Handler
	srv     *httptest.Server
	room    *room.Room
	roomNS  atomic.Int64 // time spent in State.Broadcast
	clients []io.Closer
	readers sync.WaitGroup
	frames  *wstest.FrameCounter // data frames read by all clients
}

func newFixture(b *testing.B, network string, n int, mailbox bool) *fixture {
	b.Helper()
	fx := &fixture{n: n, system: actors.NewSystem(zerolog.Nop()), frames: wstest.NewFrameCounter()}
	tree, err := supervisor.New(fx.system)
	if err != nil {
		b.Fatal(err)
	}
	fx.tree = tree
	opened := make(chan *actors.Conn, n)
	fx.h, err = actors.NewHandler(fx.system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				opened <- m.Conn
			}
		})
	}, &actors.HandlerOptions{Tree: tree, AcceptOptions: transport.AcceptOptions{
		Compression:          transport.CompressionEnabled,
		CompressionThreshold: 512,
		// The benchmark keeps at most a window of broadcasts in flight;
		// the queue only has to hold that.
		QueueMessages: 4096,
		QueueBytes:    64 << 20,
	}})
	if err != nil {
		b.Fatal(err)
	}
	fx.room, err = room.Spawn(context.Background(), tree, "bench", &room.Options{
		Behavior: func(s *room.State) actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if _, ok := ctx.Message().(*benchBroadcast); ok {
					start := time.Now()
					f := transport.NewFrame(transport.MessageText, benchPayload)
					if mailbox {
						send := &actors.Send{Frame: f}
						s.Range(func(m room.Member) bool {
							ctx.Send(m.PID(), send)
							return true
						})
					} else {
						s.Broadcast(f, nil)
					}
					fx.roomNS.Add(int64(time.Since(start)))
				}
			})
		},
	})
	if err != nil {
		b.Fatal(err)
	}

	switch network {
	case "tcp":
		fx.srv = httptest.NewServer(fx.h)
		url := "ws" + strings.TrimPrefix(fx.srv.URL, "http")
		for i := range n {
			d := &websocket.Dialer{EnableCompression: i%2 == 0}
			c, _, err := d.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			fx.clients = append(fx.clients, c.NetConn())
			fx.readers.Add(1)
			// The server sends nothing before the first broadcast, so
			// gorilla has buffered nothing past the handshake.
			go fx.readFrames(bufio.NewReaderSize(c.NetConn(), 4096))
		}
	case "pipe":
		for i := range n {
			fx.pipeClient(b, i%2 == 0)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	compressed := 0
	for range n {
		conn := <-opened
		if conn.Compressed() {
			compressed++
		}
		if _, err := fx.room.Join(ctx, &room.Join{Conn: conn}); err != nil {
			b.Fatal(err)
		}
	}
	if compressed != (n+1)/2 {
		b.Fatalf("%d of %d members negotiated deflate, want %d", compressed, n, (n+1)/2)
	}
	return fx
}

// pipeClient hands the Handler an upgrade request whose connection is one
// end of a net.Pipe, and reads the other end.
func (fx *fixture) pipeClient(b *testing.B, deflate bool) {
	server, client := net.Pipe()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	r := httptest.NewRequest(http.MethodGet, "http://bench/ws", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	if deflate {
		r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	}
	fx.clients = append(fx.clients, client)
	br := bufio.NewReaderSize(client, 4096)
	fx.readers.Add(1)
	go func() {
		// Skip the 101 response, then read frames.
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				fx.readers.Done()
				return
			}
			if line == "\r\n" {
				break
			}
		}
		fx.readFrames(br)
	}()
	fx.h.ServeHTTP(&hijacker{conn: server, header: http.Header{}}, r)
}

// hijacker is the http.ResponseWriter of a pipe "request".
type hijacker struct {
	conn   net.Conn
	header http.Header
}

func (h *hijacker) Header() http.Header         { return h.header }
func (h *hijacker) Write(p []byte) (int, error) { return h.conn.Write(p) }
func (h *hijacker) WriteHeader(int)             {}
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// readFrames counts the data frames a client reads until its connection ends.
func (fx *fixture) readFrames(br *bufio.Reader) {
	defer fx.readers.Done()
	fx.frames.Read(br)
}

// waitTotal waits until the clients have read x data frames in all.
func (fx *fixture) waitTotal(x int64) { fx.frames.WaitTotal(x) }

func (fx *fixture) run(b *testing.B) {
	const window = 256 // broadcasts in flight
	n := int64(fx.n)
	base := fx.frames.Total()
	fx.roomNS.Store(0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	comps := probe.Compressions.Load()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	msg := &benchBroadcast{}
	for i := range int64(b.N) {
		if i >= window {
			// Roughly: the slowest members are within a window.
			fx.waitTotal(base + (i-window+1)*n)
		}
		fx.room.Tell(msg)
	}
	fx.waitTotal(base + int64(b.N)*n)
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	recipients := float64(b.N) * float64(n)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/recipients, "allocs/recipient")
	b.ReportMetric(float64(probe.Compressions.Load()-comps)/float64(b.N), "compressions/broadcast")
	b.ReportMetric(float64(fx.roomNS.Load())/recipients, "room-ns/recipient")
	b.ReportMetric(float64(elapsed.Nanoseconds())/recipients, "ns/recipient")
}

func (fx *fixture) close(b *testing.B) {
	for _, c := range fx.clients {
		_ = c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := fx.h.Shutdown(ctx); err != nil {
		b.Error(err)
	}
	if err := fx.tree.Shutdown(ctx); err != nil {
		b.Error(err)
	}
	if fx.srv != nil {
		fx.srv.Close()
	}
	fx.readers.Wait()
}
