// Command gorillahub is a plain gorilla/websocket peer server for
// bench/wsbench, in the style of gorilla's chat example
// (github.com/gorilla/websocket/examples/chat): a hub goroutine per room
// owns the member set; each client has a read pump, a write pump and a
// buffered send channel (256), and a client whose channel is full is dropped.
// The hub prepares each message once (websocket.PreparedMessage), so it is
// framed, and compressed, once per broadcast. GET /ws?room=NAME; every
// message is broadcast to every member of the room, the sender included.
//
//	go run ./bench/servers/gorillahub [-port 0] [-deflate]
//
// It listens on 127.0.0.1 and prints "listening 127.0.0.1:PORT" on stdout.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The chat example's constants, with a read limit that fits the benchmark.
const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 1 << 20
)

type broadcast struct {
	typ  int
	data []byte
}

// hub is one room.
type hub struct {
	clients    map[*client]bool
	broadcast  chan broadcast
	register   chan *client
	unregister chan *client
}

func newHub() *hub {
	return &hub{
		clients:    map[*client]bool{},
		broadcast:  make(chan broadcast, 256),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			pm, err := websocket.NewPreparedMessage(m.typ, m.data)
			if err != nil {
				continue
			}
			for c := range h.clients {
				select {
				case c.send <- pm:
				default:
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
}

func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		typ, message, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		// Any frame from the peer shows it is alive (the benchmark's
		// clients answer pings, but also keep talking).
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		c.hub.broadcast <- broadcast{typ, message}
	}
}

func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case pm, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				_ = c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WritePreparedMessage(pm); err != nil {
				return
			}
		case <-ticker.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

type server struct {
	upgrader websocket.Upgrader
	mu       sync.Mutex
	hubs     map[string]*hub
}

func (s *server) hub(name string) *hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hubs[name]
	if h == nil {
		h = newHub()
		s.hubs[name] = h
		go h.run()
	}
	return h
}

func (s *server) serveWs(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("room")
	if name == "" {
		name = "default"
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if s.upgrader.EnableCompression {
		_ = conn.SetCompressionLevel(1)
	}
	c := &client{hub: s.hub(name), conn: conn, send: make(chan *websocket.PreparedMessage, 256)}
	c.hub.register <- c
	go c.writePump()
	go c.readPump()
}

func main() {
	port := flag.Int("port", envInt("PORT", 0), "TCP port on 127.0.0.1 (0: any free port; env PORT)")
	deflate := flag.Bool("deflate", os.Getenv("DEFLATE") == "1", "negotiate permessage-deflate (level 1; env DEFLATE=1)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6061)")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(*pprofAddr, nil)) }()
	}

	s := &server{
		upgrader: websocket.Upgrader{
			ReadBufferSize:    1024,
			WriteBufferSize:   1024,
			EnableCompression: *deflate,
			CheckOrigin:       func(*http.Request) bool { return true },
		},
		hubs: map[string]*hub{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWs)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
