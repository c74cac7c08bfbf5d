// Command goecho is a floor for bench/wsbench's echo scenarios, not a peer:
// the least a Go server can do per WebSocket round trip, to tell what in
// wsactor's echo cost is Go's and what is wsactor's (docs/performance.md,
// issue 16). It speaks just enough of RFC 6455 for wsbench: the upgrade,
// unfragmented masked frames from the client, each message written back at
// once to its sender (echo's room of one); no rooms, no limits, no close
// handshake, no extensions.
//
//	goecho -mode netpoll   a goroutine per connection reading through Go's
//	                       netpoller (net.Conn), as wsactor and gorilla do
//	goecho -mode epoll     one event loop per GOMAXPROCS over a level-
//	                       triggered epoll set, reading each socket once per
//	                       readiness and writing from the loop, as uWebSockets
//	                       (Bun) does; Linux only
//	goecho -mode transport wsactor's transport package alone (no actors, no
//	                       rooms): what the frame layer costs above the floor
//
// It listens on 127.0.0.1 and prints "listening 127.0.0.1:PORT" on stdout.
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free port)")
	mode := flag.String("mode", "netpoll", "netpoll, epoll or transport")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	flag.Bool("deflate", false, "ignored (no extensions)")
	flag.Parse()
	var serve func(net.Conn, *bufio.Reader)
	switch *mode {
	case "netpoll":
		serve = serveNetpoll
	case "epoll":
		loops, err := startLoops(runtime.GOMAXPROCS(0))
		if err != nil {
			log.Fatalf("epoll: %v", err)
		}
		serve = loops.adopt
	case "transport":
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
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
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		pprof.StopCPUProfile()
		os.Exit(0)
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	if serve == nil {
		serveTransport(ln)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			br, err := upgrade(c)
			if err != nil {
				_ = c.Close()
				return
			}
			serve(c, br)
		}()
	}
}

// upgrade answers the client's upgrade request with a 101.
func upgrade(c net.Conn) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(c, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		return nil, errors.New("no Sec-WebSocket-Key")
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(h[:])+"\r\n\r\n")
	return br, err
}

// echoFrames writes to out, for every whole frame at the start of in, its
// payload unmasked in an unmasked frame of the same opcode (a ping gets a
// pong; a close ends the connection). It returns out, the bytes of in it
// used and whether the connection is to end.
func echoFrames(in, out []byte) ([]byte, int, bool) {
	used := 0
	for {
		b := in[used:]
		if len(b) < 2 {
			return out, used, false
		}
		op, n, hdr := b[0]&0x0f, int(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return out, used, false
			}
			n, hdr = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return out, used, false
			}
			n, hdr = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if b[1]&0x80 == 0 || n > 1<<20 {
			return out, used, true // unmasked or too big: not a client we serve
		}
		if len(b) < hdr+4+n {
			return out, used, false
		}
		key, p := b[hdr:hdr+4], b[hdr+4:hdr+4+n]
		for i := range p {
			p[i] ^= key[i&3]
		}
		used += hdr + 4 + n
		switch op {
		case 0x8:
			return out, used, true
		case 0x9:
			op = 0xa
		case 0xa:
			continue
		}
		out = append(out, 0x80|op)
		switch {
		case n < 126:
			out = append(out, byte(n))
		case n < 1<<16:
			out = append(out, 126)
			out = binary.BigEndian.AppendUint16(out, uint16(n))
		default:
			out = append(out, 127)
			out = binary.BigEndian.AppendUint64(out, uint64(n))
		}
		out = append(out, p...)
	}
}

// serveNetpoll reads c on this goroutine until it fails.
func serveNetpoll(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	in := make([]byte, 0, 64<<10)
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		in = append(in, b...)
	}
	var out []byte
	for {
		if len(in) == cap(in) {
			return // a frame bigger than the buffer: not a client we serve
		}
		n, err := c.Read(in[len(in):cap(in)])
		if err != nil {
			return
		}
		in = in[:len(in)+n]
		var used int
		var end bool
		out, used, end = echoFrames(in, out[:0])
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		if end {
			return
		}
		in = in[:copy(in, in[used:])]
	}
}
