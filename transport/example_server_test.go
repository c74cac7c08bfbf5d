package transport_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/wsactor/wsactor/transport"
)

// NewServer serves WebSocket endpoints (and anything else on the mux) with
// header, read and idle timeouts, which http.ListenAndServe does not have.
// A WebSocket outlives them: they end with the upgrade.
func ExampleNewServer() {
	closed := make(chan transport.CloseInfo, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered the request already
		}
		c.Start(serverEcho{closed})
	})

	srv := transport.NewServer("127.0.0.1:0", mux) // in a program: ":8080"
	ln, err := net.Listen("tcp", srv.Addr)         // in a program: go srv.ListenAndServe()
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close() // a program calls Shutdown, after its WebSocket handlers' Shutdown
	fmt.Println(srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout, srv.MaxHeaderBytes>>10, "KiB")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := transport.Dial(ctx, "ws://"+ln.Addr().String()+"/ws", nil)
	if err != nil {
		log.Fatal(err)
	}
	got := make(chan string, 1)
	c.Start(serverEchoClient{got})
	_ = c.Send(transport.NewFrame(transport.MessageText, []byte("hello")))
	fmt.Println(<-got)
	c.Close(transport.StatusNormalClosure, "")
	<-c.Done()
	fmt.Println("server saw close", int((<-closed).Code))
	// Output:
	// 10s 30s 1m0s 64 KiB
	// hello
	// server saw close 1000
}

// serverEcho sends every message back and reports the close.
type serverEcho struct{ closed chan<- transport.CloseInfo }

func (serverEcho) HandleMessage(c *transport.Conn, typ transport.MessageType, data []byte) {
	_ = c.Send(transport.NewFrame(typ, data))
}

func (e serverEcho) HandleClose(_ *transport.Conn, info transport.CloseInfo) { e.closed <- info }

// serverEchoClient passes on what it receives.
type serverEchoClient struct{ got chan<- string }

func (e serverEchoClient) HandleMessage(_ *transport.Conn, _ transport.MessageType, data []byte) {
	e.got <- string(data)
}

func (serverEchoClient) HandleClose(*transport.Conn, transport.CloseInfo) {}
