package wsactortest

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Net is an in-memory network: a net.Listener whose connections are the
// server ends of BufferedPipe pairs, and a Dial (a NetDialContext) that
// returns the client ends. It needs no port, and inside a testing/synctest
// bubble everything on it runs on fake time: reads, writes and deadlines
// wait on channels and timers.
//
// As on a socket, each direction buffers (Buffer bytes): a peer that stops
// reading blocks the writer only once that much is unread. What it does not
// have is a kernel's record of data arriving unread (transport's LastHeard
// on Linux), so a peer whose reader is paused is not heard from.
type Net struct {
	// Buffer is each direction's buffer in bytes; zero means DefaultBuffer.
	// Set it before the first Dial.
	Buffer int

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
	client, server := BufferedPipe(n.Buffer)
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
