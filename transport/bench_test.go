package transport_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/internal/probe"
	"github.com/wsactor/wsactor/internal/wstest"
	"github.com/wsactor/wsactor/transport"
)

// benchPeers is a set of server Conns over loopback TCP whose clients read
// and discard frames without allocating, counting them. Allocations counted
// by a benchmark are therefore the server side's.
type benchPeers struct {
	srv     *httptest.Server
	conns   []*transport.Conn
	clients []net.Conn
	readers sync.WaitGroup
	frames  *wstest.FrameCounter // data frames read by all clients
}

type discardHandler struct{}

func (discardHandler) HandleMessage(*transport.Conn, transport.MessageType, []byte) {}
func (discardHandler) HandleClose(*transport.Conn, transport.CloseInfo)             {}

func newBenchPeers(b *testing.B, n int, opts *transport.AcceptOptions, deflate bool) *benchPeers {
	b.Helper()
	p := &benchPeers{frames: wstest.NewFrameCounter()}
	accepted := make(chan *transport.Conn, n)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, opts)
		if err != nil {
			return
		}
		c.Start(discardHandler{})
		accepted <- c
	}))
	url := "ws" + strings.TrimPrefix(p.srv.URL, "http")
	for range n {
		d := &websocket.Dialer{EnableCompression: deflate}
		ws, _, err := d.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		c := <-accepted
		if c.Compressed() != deflate {
			b.Fatalf("deflate negotiated: %v, want %v", c.Compressed(), deflate)
		}
		p.conns = append(p.conns, c)
		p.clients = append(p.clients, ws.NetConn())
		p.readers.Add(1)
		// The server sends nothing before the benchmark does, so gorilla
		// has buffered nothing past the handshake.
		go p.read(bufio.NewReaderSize(ws.NetConn(), 32<<10))
	}
	return p
}

// read counts the data frames a client reads until its connection ends.
func (p *benchPeers) read(br *bufio.Reader) {
	defer p.readers.Done()
	p.frames.Read(br)
}

// waitTotal waits until the clients have read x data frames in all.
func (p *benchPeers) waitTotal(x int64) { p.frames.WaitTotal(x) }

func (p *benchPeers) close(b *testing.B) {
	for _, c := range p.clients {
		_ = c.Close()
	}
	for _, c := range p.conns {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			b.Errorf("server connection did not end")
			c.Terminate(nil)
		}
	}
	p.srv.Close()
	p.readers.Wait()
}

// BenchmarkConnSend measures Conn.Send on one server connection over
// loopback TCP, timed until the client has read every frame.
//
//   - burst: b.N frames queued back to back (at most 512 in flight), so
//     the writer batches queued frames into one writev.
//   - one-by-one: each frame is sent only after the client read the
//     previous one, so every Send starts the writer goroutine and costs one
//     write: the latency path.
//
// allocs/op includes the Frame that each op makes (transport.NewFrame).
func BenchmarkConnSend(b *testing.B) {
	for _, size := range []int{64, 1024} {
		for _, mode := range []string{"burst", "one-by-one"} {
			b.Run(fmt.Sprintf("%s/size=%d", mode, size), func(b *testing.B) {
				p := newBenchPeers(b, 1, &transport.AcceptOptions{QueueMessages: 4096, QueueBytes: 64 << 20}, false)
				defer p.close(b)
				payload := bytes.Repeat([]byte("x"), size)
				c := p.conns[0]
				const window = 512
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := range int64(b.N) {
					switch {
					case mode == "one-by-one" && i > 0:
						p.waitTotal(i)
					case mode == "burst" && i >= window:
						p.waitTotal(i - window + 1)
					}
					if err := c.Send(transport.NewFrame(transport.MessageBinary, payload)); err != nil {
						b.Fatal(err)
					}
				}
				p.waitTotal(int64(b.N))
			})
		}
	}
}

// BenchmarkFrameDeflate measures one prepared Frame (1 KiB of JSON) sent to
// N connections that all negotiated permessage-deflate: one op is one
// frame, made and sent to every connection, timed until every client has
// read it. compressions/frame proves the frame is compressed once however
// many recipients it has; allocs/recipient is the server's heap
// allocations per recipient.
func BenchmarkFrameDeflate(b *testing.B) {
	payload := func() []byte {
		var buf bytes.Buffer
		for i := 0; buf.Len() < 1024; i++ {
			fmt.Fprintf(&buf, `{"player":%d,"x":%d,"y":%d},`, i, i*7%100, i*13%100)
		}
		return buf.Bytes()[:1024]
	}()
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			p := newBenchPeers(b, n, &transport.AcceptOptions{
				Compression:          transport.CompressionEnabled,
				CompressionThreshold: 512,
				QueueMessages:        4096,
				QueueBytes:           64 << 20,
			}, true)
			defer p.close(b)
			const window = 256
			comps := probe.Compressions.Load()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range int64(b.N) {
				if i >= window {
					p.waitTotal((i - window + 1) * int64(n))
				}
				f := transport.NewFrame(transport.MessageText, payload)
				for _, c := range p.conns {
					if err := c.Send(f); err != nil {
						b.Fatal(err)
					}
				}
			}
			p.waitTotal(int64(b.N) * int64(n))
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(probe.Compressions.Load()-comps)/float64(b.N), "compressions/frame")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/float64(n), "allocs/recipient")
		})
	}
}

// countHandler counts delivered messages and signals when want have arrived.
type countHandler struct {
	n    int
	want int
	done chan struct{}
}

func (h *countHandler) HandleMessage(*transport.Conn, transport.MessageType, []byte) {
	h.n++
	if h.n == h.want {
		close(h.done)
	}
}
func (*countHandler) HandleClose(*transport.Conn, transport.CloseInfo) {}

// BenchmarkConnRead measures the reader: b.N masked client messages of
// size bytes, written back to back over loopback TCP (pre-encoded, so the
// client costs nothing per op), parsed, unmasked, checked (text: UTF-8) and
// handed to a Handler that counts them. Messages are one frame each, or
// split into 4 fragments ("frag").
func BenchmarkConnRead(b *testing.B) {
	for _, bc := range []struct {
		name  string
		size  int
		text  bool
		frags int
	}{
		{"binary-64", 64, false, 1},
		{"text-64", 64, true, 1},
		{"text-16KiB", 16 << 10, true, 1},
		{"text-16KiB-frag", 16 << 10, true, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			payload := bytes.Repeat([]byte("héllo wörld "), bc.size/13+1)[:bc.size]
			for !utf8Valid(payload) {
				payload = payload[:len(payload)-1]
			}
			op := byte(2)
			if bc.text {
				op = 1
			}
			var msg []byte
			step := (len(payload) + bc.frags - 1) / bc.frags
			for i := 0; i < len(payload); i += step {
				b0 := byte(0)
				if i == 0 {
					b0 = op
				}
				if i+step >= len(payload) {
					b0 |= 0x80
				}
				msg = append(msg, maskedFrame(b0, payload[i:min(i+step, len(payload))])...)
			}
			h := &countHandler{want: b.N, done: make(chan struct{})}
			accepted := make(chan *transport.Conn, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := transport.Accept(w, r, nil)
				if err != nil {
					return
				}
				c.Start(h)
				accepted <- c
			}))
			defer srv.Close()
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			c := <-accepted
			nc := ws.NetConn()
			batch := bytes.Repeat(msg, max(1, (64<<10)/len(msg)))
			perBatch := len(batch) / len(msg)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += perBatch {
				k := min(perBatch, b.N-sent)
				if _, err := nc.Write(batch[:k*len(msg)]); err != nil {
					b.Fatal(err)
				}
			}
			<-h.done
			b.StopTimer()
			_ = nc.Close()
			<-c.Done()
		})
	}
}

func utf8Valid(p []byte) bool { return utf8.Valid(p) }

// maskedFrame encodes one client frame with a fixed mask key.
func maskedFrame(b0 byte, p []byte) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out := []byte{b0, 0x80}
	switch n := len(p); {
	case n < 126:
		out[1] |= byte(n)
	case n <= 0xffff:
		out[1] |= 126
		out = append(out, byte(n>>8), byte(n))
	default:
		out[1] |= 127
		for s := 56; s >= 0; s -= 8 {
			out = append(out, byte(uint64(n)>>s))
		}
	}
	out = append(out, key[:]...)
	for i, c := range p {
		out = append(out, c^key[i&3])
	}
	return out
}
