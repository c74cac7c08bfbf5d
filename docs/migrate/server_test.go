package migrate_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// ws README: "Simple server".
func Example_simpleServer() {
	system := actors.NewSystem(zerolog.Nop())
	received := make(chan string, 1)
	h, err := actors.NewHandler(system, func() actor.Actor { // wss.on('connection')
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				_ = m.Conn.SendText("something")
			case *actors.Message: // ws.on('message')
				received <- fmt.Sprintf("received: %s", m.Data)
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h) // in a program: transport.NewServer(":8080", h).ListenAndServe()
	defer stop()

	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, p, _ := c.ReadMessage()
	fmt.Println("client got:", string(p))
	_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
	fmt.Println(<-received)
	// Output:
	// client got: something
	// received: hello
}

// ws README: "External HTTP/S server". A Handler is an http.Handler: mount
// it on any server, TLS or not; transport.NewServer's has the timeouts a
// server on the Internet needs. (Compiled, not run.)
func Example_externalHTTPSServerProgram() {
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor { return &echo{} }, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := transport.NewServer(":8443", h) // set srv.TLSConfig here if you need to
	log.Fatal(srv.ListenAndServeTLS("/path/to/cert.pem", "/path/to/key.pem"))
}

// An external TLS server on loopback, with a wss:// client.
func Example_externalHTTPSServer() {
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor { return &echo{} }, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config = transport.NewServer("", h)
	srv.StartTLS()
	defer srv.Close()
	defer h.Shutdown(context.Background())

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	var opts actors.DialOptions
	opts.TLSConfig = &tls.Config{RootCAs: roots}
	got := make(chan string, 1)
	ctx, cancel := dialTimeout()
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, "wss"+strings.TrimPrefix(srv.URL, "https"), func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				_ = m.Conn.SendText("over TLS")
			case *actors.Message:
				got <- m.Text()
				m.Conn.Close(actors.StatusNormalClosure, "")
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	<-conn.Transport().Done()
	// Output: over TLS
}

// echo sends every message back.
type echo struct{}

func (echo) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*actors.Message); ok {
		_ = m.Conn.Send(m.Type, m.Data)
	}
}

// ws README: "Multiple servers sharing a single HTTP/S server" (noServer +
// handleUpgrade). Each Handler is an http.Handler with its own options and
// behaviour; the mux routes by path. Unknown paths get 404 (ws destroys the
// socket).
func Example_multipleServersSharingOneHTTPServer() {
	system := actors.NewSystem(zerolog.Nop())
	say := func(s string) actor.Producer {
		return func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if m, ok := ctx.Message().(*actors.Opened); ok {
					_ = m.Conn.SendText(s)
				}
			})
		}
	}
	foo, err := actors.NewHandler(system, say("this is /foo"), nil)
	if err != nil {
		log.Fatal(err)
	}
	var barOpts actors.HandlerOptions
	barOpts.ReadLimit = 4 << 10 // options differ per endpoint
	bar, err := actors.NewHandler(system, say("this is /bar"), &barOpts)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/foo", foo)
	mux.Handle("/bar", bar)
	srv := httptest.NewServer(mux) // in a program: transport.NewServer(":8080", mux)
	defer func() {
		ctx := context.Background()
		_ = errors.Join(foo.Shutdown(ctx), bar.Shutdown(ctx))
		srv.Close()
	}()

	base := "ws" + strings.TrimPrefix(srv.URL, "http")
	for _, path := range []string{"/foo", "/bar", "/baz"} {
		c, resp, err := websocket.DefaultDialer.Dial(base+path, nil)
		if err != nil {
			fmt.Println(path, resp.StatusCode)
			continue
		}
		_, p, _ := c.ReadMessage()
		fmt.Println(path, string(p))
		c.Close()
	}
	// Output:
	// /foo this is /foo
	// /bar this is /bar
	// /baz 404
}

// ws README: "Client authentication". authenticate runs before the upgrade;
// refusing answers 401 and nothing is spawned. The principal is on Conn.
func Example_clientAuthentication() {
	authenticate := func(r *http.Request) (any, error) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			return nil, errors.New("bad token") // 401; a *transport.HTTPError picks the status
		}
		return "alice", nil
	}
	system := actors.NewSystem(zerolog.Nop())
	received := make(chan string, 1)
	var opts actors.HandlerOptions
	opts.Authenticate = authenticate
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				received <- fmt.Sprintf("Received message %s from user %s", m.Data, m.Conn.Principal())
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	_, resp, _ := websocket.DefaultDialer.Dial(url, nil)
	fmt.Println("without a token:", resp.Status)
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer s3cret"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte("hi"))
	fmt.Println(<-received)
	// Output:
	// without a token: 401 Unauthorized
	// Received message hi from user alice
}

// ws README FAQ: "How to get the IP address of the client?". ClientIP is
// the socket's peer, or, when the peer is a trusted proxy, the address
// X-Forwarded-For names (walked from the right, skipping trusted proxies;
// ws's example takes the leftmost entry, which any client can forge).
func Example_clientIP() {
	system := actors.NewSystem(zerolog.Nop())
	ips := make(chan netip.Addr, 1)
	behaviour := func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				ips <- m.Conn.ClientIP() // ws: req.socket.remoteAddress
			}
		})
	}
	direct, err := actors.NewHandler(system, behaviour, nil)
	if err != nil {
		log.Fatal(err)
	}
	var opts actors.HandlerOptions
	opts.TrustedProxies = []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), // the proxy in front of us (NGINX, a load balancer)
		netip.MustParsePrefix("10.0.0.0/8"),  // and the ones in front of it
	}
	proxied, err := actors.NewHandler(system, behaviour, &opts)
	if err != nil {
		log.Fatal(err)
	}

	xff := http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.7, 10.0.0.2"}}
	for _, h := range []*actors.Handler{direct, proxied} {
		url, stop := serve(h)
		c, _, err := websocket.DefaultDialer.Dial(url, xff)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(<-ips)
		c.Close()
		stop()
	}
	// Output:
	// 127.0.0.1
	// 203.0.113.7
}
