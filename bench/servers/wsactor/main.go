// Command wsactor is wsactor's peer server for bench/wsbench: GET
// /ws?room=NAME joins the connection to room NAME (a room.Registry), and
// every message a client sends is broadcast to every member of that room, the
// sender included, as one shared transport.Frame.
//
//	go run ./bench/servers/wsactor [-port 0] [-deflate] [-cpuprofile f]
//
// It listens on 127.0.0.1 and prints "listening 127.0.0.1:PORT" on stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/metrics"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// member is the behaviour of one connection: join the room named in the
// URL when opened, hand every message to the room as a broadcast.
type member struct {
	rooms *room.Registry
	room  *actor.PID
}

func (b *member) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		name := m.Conn.Request().URL.Query().Get("room")
		if name == "" {
			name = "default"
		}
		// Get waits only when it makes the room. The Join goes to the
		// room's mailbox ahead of any Broadcast this actor sends later.
		r, err := b.rooms.Get(context.Background(), name)
		if err != nil {
			m.Conn.Close(transport.StatusInternalError, "no room")
			return
		}
		b.room = r.PID()
		ctx.Send(b.room, &room.Join{Conn: m.Conn})
	case *actors.Message:
		if b.room != nil {
			// m.Data belongs to us: the room may keep it.
			ctx.Send(b.room, &room.Broadcast{Type: m.Type, Data: m.Data})
		}
	}
}

// metricsDefault is the -metrics flag's default, settable at link time
// (-ldflags "-X main.metricsDefault=1") to build a second peer for the
// suite's with/without comparison.
var metricsDefault string

func main() {
	port := flag.Int("port", envInt("PORT", 0), "TCP port on 127.0.0.1 (0: any free port; env PORT)")
	deflate := flag.Bool("deflate", os.Getenv("DEFLATE") == "1", "negotiate permessage-deflate (level 1, 1 KiB threshold; env DEFLATE=1)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	memprofile := flag.String("memprofile", "", "write a heap profile to this file at SIGINT/SIGTERM")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	readBuf := flag.Int("read-buffer", 0, "AcceptOptions.ReadBufferSize (0: the default)")
	memRate := flag.Int("memprofilerate", 0, "runtime.MemProfileRate (0: Go's default; 1 records every allocation, for exact per-connection figures)")
	withMetrics := flag.Bool("metrics", metricsDefault == "1", "register the Prometheus collectors (handler, rooms, process, actor system), serve /metrics and scrape it every second (to measure what metrics cost)")
	flag.Parse()
	if *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	if *pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(*pprofAddr, nil)) }()
	}

	system := actors.NewSystem(zerolog.Nop())
	tree, err := supervisor.New(system)
	if err != nil {
		log.Fatal(err)
	}
	regOpts := &room.RegistryOptions{}
	opts := &actors.HandlerOptions{Tree: tree}
	rooms := room.NewRegistry(tree, regOpts)
	opts.ReadBufferSize = *readBuf
	if *deflate {
		opts.Compression = transport.CompressionEnabled
		opts.CompressionLevel = 1
		opts.CompressionThreshold = 1024
	}
	h, err := actors.NewHandler(system, func() actor.Actor { return &member{rooms: rooms} }, opts)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	if *withMetrics {
		reg := prometheus.NewRegistry()
		reg.MustRegister(metrics.NewHandlerCollector(h, "/ws"), metrics.NewRegistryCollector(rooms, "rooms"),
			metrics.NewProcessCollector(), metrics.NewSystemCollector(system))
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		go func() { // a scrape a second: harsher than Prometheus's usual 15s
			for range time.Tick(time.Second) {
				_, _ = reg.Gather()
			}
		}()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := transport.NewServer(ln.Addr().String(), mux) // header, read and idle timeouts
	go func() { _ = srv.Serve(ln) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		if f, err := os.Create(*memprofile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Shutdown(ctx)
	_ = tree.Shutdown(ctx)
	_ = srv.Shutdown(ctx)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
