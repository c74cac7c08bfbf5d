package transport_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsactor/wsactor/transport"
)

// echoHandler sends every message back.
type echoHandler struct{ closed chan transport.CloseInfo }

func (echoHandler) HandleMessage(c *transport.Conn, typ transport.MessageType, data []byte) {
	_ = c.Send(transport.NewFrame(typ, data))
}

func (h echoHandler) HandleClose(_ *transport.Conn, info transport.CloseInfo) {
	if h.closed != nil {
		h.closed <- info
	}
}

// Accept upgrades a request in any http.Handler; Start runs the reader.
func ExampleAccept() {
	closed := make(chan transport.CloseInfo, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, &transport.AcceptOptions{Subprotocols: []string{"chat.v1"}})
		if err != nil {
			return // Accept has answered the request already
		}
		c.Start(echoHandler{closed: closed})
	}))
	defer srv.Close()

	c, _, err := transport.Dial(context.Background(), srv.URL, &transport.DialOptions{Subprotocols: []string{"chat.v1"}})
	if err != nil {
		log.Fatal(err)
	}
	got := make(chan string, 1)
	c.Start(recorder{got})
	_ = c.Send(transport.NewFrame(transport.MessageText, []byte("hello")))
	fmt.Println(<-got, c.Subprotocol())
	c.Close(transport.StatusNormalClosure, "bye")
	<-c.Done()
	info := <-closed
	fmt.Println(int(info.Code), info.Reason, info.ByPeer)
	// Output:
	// hello chat.v1
	// 1000 bye true
}

type recorder struct{ got chan<- string }

func (r recorder) HandleMessage(_ *transport.Conn, _ transport.MessageType, data []byte) {
	r.got <- string(data)
}
func (recorder) HandleClose(*transport.Conn, transport.CloseInfo) {}

// A Frame is encoded (and compressed) once, however many connections it is
// sent to.
func ExampleNewFrame() {
	var conns []*transport.Conn // e.g. a room's members
	f := transport.NewFrame(transport.MessageText, []byte(`{"event":"tick"}`))
	for _, c := range conns {
		_ = c.Send(f) // never blocks; the same bytes for every member
	}
	fmt.Println(f.Len(), f.Type())
	// Output: 16 text
}

// NetConn makes a connection a net.Conn, like ws's createWebSocketStream.
func ExampleNetConn() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, nil)
		if err != nil {
			return
		}
		s := transport.NetConn(c, transport.MessageBinary)
		_, _ = io.Copy(s, strings.NewReader("streamed over WebSocket messages"))
		_ = s.Close()
	}))
	defer srv.Close()

	c, _, err := transport.Dial(context.Background(), srv.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	s := transport.NetConn(c, transport.MessageBinary)
	b, err := io.ReadAll(s) // until the server's normal close
	fmt.Println(string(b), err)
	_ = s.Close()
	// Output: streamed over WebSocket messages <nil>
}
