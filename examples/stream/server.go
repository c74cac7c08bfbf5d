package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/transport"
)

// upper serves one stream: every line read is written back in upper case.
// It is ordinary io code; nothing in it knows about WebSockets.
func upper(rw io.ReadWriter) error {
	sc := bufio.NewScanner(rw)
	for sc.Scan() {
		if _, err := io.WriteString(rw, strings.ToUpper(sc.Text())+"\n"); err != nil {
			return err
		}
	}
	return sc.Err()
}

// streamServer upgrades each request and serves the connection as a
// net.Conn (transport.NetConn, ws's createWebSocketStream). It works on the
// transport layer, without actors, so it keeps its own list of connections
// for Shutdown.
type streamServer struct {
	log    zerolog.Logger
	accept *transport.Acceptor // the handshake's options, checked once

	mu       sync.Mutex
	conns    map[*transport.Conn]struct{}
	draining bool
	wg       sync.WaitGroup
}

func newStreamServer(logger zerolog.Logger, opts *transport.AcceptOptions) (*streamServer, error) {
	accept, err := transport.NewAcceptor(opts)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	return &streamServer{log: logger, accept: accept, conns: map[*transport.Conn]struct{}{}}, nil
}

func (s *streamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	c, err := s.accept.Accept(w, r)
	if err != nil {
		s.log.Debug().Err(err).Msg("upgrade failed") // Accept has answered
		return
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	if s.draining {
		c.Close(transport.StatusGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()

	// The hijacked request's goroutine is ours now: serve the stream here.
	nc := transport.NetConn(c, transport.MessageText)
	log := s.log.With().Str("remote", c.ClientIP().String()).Logger()
	log.Info().Msg("stream opened")
	err = upper(nc)
	var ce transport.CloseError
	switch {
	case err == nil:
		log.Info().Msg("stream ended")
	case errors.As(err, &ce):
		log.Info().Int("code", int(ce.Code)).Msg("stream closed by peer")
	case errors.Is(err, transport.ErrClosed):
		// The peer closed while answers were due: a WebSocket has no
		// half-close, so they cannot be sent.
		log.Info().Msg("stream closed before every answer was sent")
	default:
		log.Warn().Err(err).Msg("stream failed")
	}
	_ = nc.Close() // waits for the closing handshake
}

// Shutdown refuses new upgrades, closes every stream with 1001 and waits
// until they are served, or until ctx is done.
func (s *streamServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for c := range s.conns {
		c.Close(transport.StatusGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stream: shutdown: %w", ctx.Err())
	}
}
