package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// protoactor's dead-letter throttle keeps a goroutine for its interval
	// (1s) after a dead letter is logged; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// waitTimeout bounds every wait for one expected event.
const waitTimeout = 15 * time.Second

// chatServer is run() on a loopback port, as `go run ./examples/chat -addr
// ADDR` runs it.
type chatServer struct {
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port
	stop func() error
}

// Stop does what SIGINT does and returns run's error. It is also called at
// cleanup; calling it twice is fine.
func (s *chatServer) Stop() error { return s.stop() }

// wsURL is the chat's WebSocket URL.
func (s *chatServer) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/ws" }

// startChat runs the chat on addr (127.0.0.1:0 for any port) until the test
// ends, with its logs in the test's log.
func startChat(t *testing.T, addr string) *chatServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &logWriter{t: t, url: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", addr, "-v"}, out) }()
	s := &chatServer{}
	s.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			out.detach()
			return err
		case <-time.After(waitTimeout):
			return errors.New("run did not return after its context was cancelled")
		}
	})
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("chat server: %v", err)
		}
	})
	select {
	case s.URL = <-out.url:
		s.Addr = strings.TrimPrefix(s.URL, "http://")
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("the chat server did not start")
	}
	return s
}

// logWriter passes run's log lines to the test log and picks the server's
// URL out of them.
type logWriter struct {
	t   *testing.T
	url chan string

	mu       sync.Mutex
	detached bool
	found    bool
}

var listening = regexp.MustCompile(`chat on (http://\S+)`)

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.detached {
		return len(p), nil
	}
	line := strings.TrimRight(string(p), "\n")
	w.t.Log(line)
	if m := listening.FindStringSubmatch(line); m != nil && !w.found {
		w.found = true
		w.url <- m[1]
	}
	return len(p), nil
}

// detach stops logging to the test, which may end while a stray
// goroutine still logs.
func (w *logWriter) detach() {
	w.mu.Lock()
	w.detached = true
	w.mu.Unlock()
}
