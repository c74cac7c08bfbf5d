// Command inboxflood measures inbound memory under a flood against a handler
// that does not keep up (issue 11, item 3): a wsactor server whose behaviour
// sleeps on every message, and -conns gorilla clients that each write -msgs
// messages of -size bytes as fast as the server lets them (random bytes, or
// zeros compressed with permessage-deflate, so about 1 KB on the wire per
// MiB). It prints the messages each client got written before its write
// deadline, the peak HeapInuse sampled every 50 ms, and the process's peak
// RSS (VmHWM, Linux). The clients run in the same process; their share is
// small (one message buffer, and with -deflate a compressor, each).
//
//	go run ./bench/inboxflood            # 10 x 100 x 1 MiB, uncompressed
//	go run ./bench/inboxflood -deflate   # the same, compressed
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

type sleeper struct{ d time.Duration }

func (s sleeper) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actors.Message); ok {
		time.Sleep(s.d)
	}
}

func main() {
	var (
		deflate = flag.Bool("deflate", false, "negotiate permessage-deflate and send compressible (zero) messages")
		conns   = flag.Int("conns", 10, "client connections")
		msgs    = flag.Int("msgs", 100, "messages each client tries to send")
		size    = flag.Int("size", 1<<20-1, "message size in bytes (the default ReadLimit is 1 MiB)")
		stall   = flag.Duration("stall", 8*time.Second, "a client stops when one write blocks this long")
	)
	flag.Parse()

	system := actors.NewSystem(zerolog.Nop())
	opts := &actors.HandlerOptions{}
	if *deflate {
		opts.Compression = transport.CompressionEnabled
	}
	h, err := actors.NewHandler(system, func() actor.Actor { return sleeper{time.Minute} }, opts)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() { _ = transport.NewServer("", h).Serve(ln) }()

	msg := make([]byte, *size)
	if !*deflate {
		_, _ = rand.Read(msg)
	}
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	sent := make([]int, *conns)
	for i := range *conns {
		d := websocket.Dialer{EnableCompression: *deflate}
		ws, _, err := d.Dial("ws://"+ln.Addr().String(), nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range *msgs {
				_ = ws.SetWriteDeadline(time.Now().Add(*stall))
				if ws.WriteMessage(websocket.BinaryMessage, msg) != nil {
					return
				}
				sent[i]++
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	fmt.Printf("deflate=%v conns=%d size=%d: messages written per client %v\n", *deflate, *conns, *size, sent)
	fmt.Printf("peak HeapInuse %.1f MiB, %s\n", float64(peak)/(1<<20), peakRSS())
}

// peakRSS returns the process's VmHWM line from /proc, or "peak RSS unknown".
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "peak RSS unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return "peak RSS " + strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return "peak RSS unknown"
}
