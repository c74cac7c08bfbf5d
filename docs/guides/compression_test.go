package guides_test

import (
	"bytes"
	"compress/flate"
	"fmt"
	"log"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/probe"
	"github.com/wsactor/wsactor/transport"
)

// One frame sent to many connections is compressed once, whatever the
// number of recipients.
func Example_compressOnce() {
	var opts actors.HandlerOptions
	opts.Compression = transport.CompressionEnabled // servers default to off
	opts.CompressionThreshold = 256                 // smaller messages go out plain (default 1024)
	opts.CompressionLevel = flate.BestSpeed         // the default
	h, opened := openedConns(&opts)
	url, stop := serve(h)
	defer stop()

	dialer := websocket.Dialer{EnableCompression: true}
	var clients []*websocket.Conn
	var conns []*actors.Conn
	for range 3 {
		c, resp, err := dialer.Dial(url, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		clients, conns = append(clients, c), append(conns, <-opened)
		if len(clients) == 1 {
			fmt.Println("negotiated:", resp.Header.Get("Sec-WebSocket-Extensions"))
		}
	}

	for _, size := range []int{100, 4096} {
		before := compressions() // a counter transport keeps for its own tests
		f := transport.NewFrame(transport.MessageText, bytes.Repeat([]byte("wsactor "), size/8))
		for _, conn := range conns {
			_ = conn.SendFrame(f) // what room.Broadcast does for each member
		}
		for _, c := range clients {
			_, _, _ = c.ReadMessage()
		}
		fmt.Printf("%d bytes to 3 clients: compressed %d times\n", size, compressions()-before)
	}
	// Output:
	// negotiated: permessage-deflate; server_no_context_takeover; client_no_context_takeover
	// 100 bytes to 3 clients: compressed 0 times
	// 4096 bytes to 3 clients: compressed 1 times
}

// Clients offer compression by default; turn it off per dial. (Compiled,
// not run.)
func Example_clientCompression() {
	var opts actors.DialOptions
	opts.Compression = transport.CompressionDisabled // ws: perMessageDeflate: false
	_ = opts
}

// BenchmarkDeflate measures what compressing one message costs, the way the
// transport does it (a pooled compressor, Reset, Write, Flush), for JSON of
// a few sizes at a few levels. The guide's numbers come from
//
//	go test -run '^$' -bench Deflate ./docs/guides
func BenchmarkDeflate(b *testing.B) {
	for _, size := range []int{1 << 10, 4 << 10, 64 << 10} {
		p := jsonPayload(size)
		for _, level := range []struct {
			name  string
			level int
		}{{"level1", flate.BestSpeed}, {"level6", 6}, {"level9", flate.BestCompression}} {
			b.Run(fmt.Sprintf("%dB/%s", size, level.name), func(b *testing.B) {
				var buf bytes.Buffer
				w, _ := flate.NewWriter(&buf, level.level)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					w.Reset(&buf)
					_, _ = w.Write(p)
					_ = w.Flush()
				}
				b.ReportMetric(float64(buf.Len()-4)/float64(size), "ratio")
			})
		}
	}
}

// jsonPayload returns size bytes of game-state-like JSON.
func jsonPayload(size int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"player-%d","x":%.2f,"y":%.2f,"alive":%t},`, i, i, float64(i)*1.5, float64(i)*2.25, i%3 == 0)
	}
	return b.Bytes()[:size]
}

// compressions reads the count of messages transport has compressed, a
// counter kept for wsactor's own tests.
func compressions() int64 { return probe.Compressions.Load() }
