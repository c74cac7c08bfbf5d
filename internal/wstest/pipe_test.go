package wstest_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/internal/wstest"
	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/wsactor/wsactor/transport.(*poller).run"),
		goleak.IgnoreTopFunction("github.com/wsactor/wsactor/transport.(*writerPool).next"))
}

// recorder is a transport.Handler that echoes (if echo) and records.
type recorder struct {
	echo   bool
	mu     sync.Mutex
	msgs   []string
	closed []transport.CloseInfo
}

func (r *recorder) HandleMessage(c *transport.Conn, typ transport.MessageType, data []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, string(data))
	r.mu.Unlock()
	if r.echo {
		_ = c.Send(transport.NewFrame(typ, data))
	}
}

func (r *recorder) HandleClose(c *transport.Conn, info transport.CloseInfo) {
	r.mu.Lock()
	r.closed = append(r.closed, info)
	r.mu.Unlock()
}

func (r *recorder) get() ([]string, []transport.CloseInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...), append([]transport.CloseInfo(nil), r.closed...)
}

// TestPipe: the two ends of a Pipe exchange messages and close with the
// closing handshake, all inside a synctest bubble, in no fake time at all,
// and leave no goroutine behind (synctest.Test would fail otherwise).
func TestPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		server, client, err := wstest.Pipe(context.Background(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if server.Request() == nil || client.Response() == nil || client.Response().StatusCode != http.StatusSwitchingProtocols {
			t.Fatal("no handshake on record")
		}
		srv, cli := &recorder{echo: true}, &recorder{}
		server.Start(srv)
		client.Start(cli)
		for _, s := range []string{"one", "two", "three"} {
			if err := client.Send(transport.NewFrame(transport.MessageText, []byte(s))); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got, _ := cli.get(); len(got) != 3 || got[2] != "three" {
			t.Fatalf("client got %q", got)
		}
		client.Close(transport.StatusNormalClosure, "bye")
		<-server.Done()
		<-client.Done()
		_, sc := srv.get()
		_, cc := cli.get()
		if len(sc) != 1 || sc[0].Code != transport.StatusNormalClosure || sc[0].Reason != "bye" || len(cc) != 1 || cc[0].Code != transport.StatusNormalClosure {
			t.Fatalf("close: server %+v, client %+v", sc, cc)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("took %v of fake time", d)
		}
	})
}

// TestServerWithGorilla: any client can reach a Server through Net.Dial,
// and a peer that stops reading is cut off by the server's timeouts on
// fake time: the server's close frame goes into the pipe's buffer as it
// would into a socket's, is never answered, and the connection ends after
// exactly the default CloseTimeout (5s), which takes no real time.
func TestServerWithGorilla(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conns := make(chan *transport.Conn, 1)
		s := wsactortest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := transport.Accept(w, r, nil)
			if err != nil {
				t.Error(err)
				return
			}
			c.Start(&recorder{echo: true})
			conns <- c
		}))
		defer s.Close()
		d := websocket.Dialer{NetDialContext: s.Net.Dial}
		c, _, err := d.Dial(s.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		server := <-conns
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.ReadMessage(); err != nil || string(p) != "hi" {
			t.Fatalf("read %q, %v", p, err)
		}
		// The client stops reading: the server's close is never answered.
		start := time.Now()
		server.Close(transport.StatusGoingAway, "")
		<-server.Done()
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("a close to a peer that does not read ended after %v, want the close timeout", took)
		}
	})
}
