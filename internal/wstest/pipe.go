package wstest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/wsactor/wsactor/transport"
)

// Net is an in-memory network: a net.Listener whose connections are the
// server ends of net.Pipe pairs, and a Dial (a NetDialContext) that returns
// the client ends. It needs no port, and inside a testing/synctest bubble
// everything on it runs on fake time: net.Pipe's reads, writes and
// deadlines block durably.
//
// Unlike a socket, a pipe has no buffer: a write waits for the peer to
// read. A peer that stops reading blocks the writer at once (on TCP only
// once the kernel's buffers are full), so write timeouts fire sooner than
// over loopback.
type Net struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewNet returns an open Net.
func NewNet() *Net {
	return &Net{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for a Dial and returns its server end.
func (n *Net) Accept() (net.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	case <-n.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and Dial; connections already made stay open.
func (n *Net) Close() error {
	n.once.Do(func() { close(n.done) })
	return nil
}

// Addr returns a placeholder address.
func (n *Net) Addr() net.Addr { return pipeAddr{} }

// Dial connects to the Net's Accept and returns the client end. network
// and addr are ignored, so any URL's host will do.
func (n *Net) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case n.conns <- server:
		return client, nil
	case <-n.done:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, net.ErrClosed
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// Server serves an http.Handler (an actors.Handler, say) on a Net, as
// httptest.Server does on loopback. Clients connect with the Net's Dial as
// their NetDialContext (transport.DialOptions, gorilla's
// websocket.Dialer), to URL.
type Server struct {
	// URL is "ws://pipe"; its host is ignored by Net.Dial.
	URL string
	Net *Net

	srv    *http.Server
	served chan struct{}
}

// NewServer starts serving h on a new Net.
func NewServer(h http.Handler) *Server {
	s := &Server{URL: "ws://pipe", Net: NewNet(), srv: &http.Server{Handler: h}, served: make(chan struct{})}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(s.Net)
	}()
	return s
}

// Close stops the server and closes its connections that were not
// upgraded; as with httptest.Server, upgraded (hijacked) connections are
// the handler's to close. It waits for the serving goroutine to end.
func (s *Server) Close() {
	_ = s.srv.Close()
	<-s.served
}

// Pipe returns the two ends of one WebSocket connection made through the
// real opening handshake (transport.Accept on the server end,
// transport.Dial on the client end) over net.Pipe. accept and dial may be
// nil; dial's NetDialContext and Proxy are replaced. Neither end is
// started: call Start on each with its handler. Close both when done.
func Pipe(ctx context.Context, accept *transport.AcceptOptions, dial *transport.DialOptions) (server, client *transport.Conn, err error) {
	type accepted struct {
		c   *transport.Conn
		err error
	}
	got := make(chan accepted, 1)
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, accept)
		got <- accepted{c, err}
	}))
	defer srv.Close()
	var o transport.DialOptions
	if dial != nil {
		o = *dial
	}
	o.NetDialContext = srv.Net.Dial
	o.Proxy = transport.NoProxy
	client, _, err = transport.Dial(ctx, srv.URL, &o)
	if err != nil {
		select {
		case a := <-got:
			if a.c != nil {
				a.c.Terminate(err)
			}
		default:
		}
		return nil, nil, err
	}
	a := <-got
	if a.err != nil {
		client.Terminate(a.err)
		return nil, nil, errors.Join(errors.New("wstest: pipe: server end"), a.err)
	}
	return a.c, client, nil
}
