package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// waitTimeout bounds every wait for one expected event.
const waitTimeout = 15 * time.Second

// chatServer is run() on a loopback port, as `go run ./examples/chat -addr
// ADDR -data DIR` runs it.
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

var listening = regexp.MustCompile(`chat on (http://\S+)`)

// startChat runs the chat on addr (127.0.0.1:0 for any port) with its
// history in dataDir (a t.TempDir, never the default shared one) until the
// test ends, with its logs in the test's log.
func startChat(t *testing.T, addr, dataDir string) *chatServer {
	t.Helper()
	out := exampletest.NewLogWriter(t, listening)
	r := exampletest.Start(t, func(ctx context.Context) error {
		return run(ctx, []string{"-addr", addr, "-data", dataDir, "-v"}, out)
	})
	s := &chatServer{stop: r.Stop}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("chat server: %v", err)
		}
	})
	select {
	case m := <-out.Match():
		s.URL = m[1]
		s.Addr = strings.TrimPrefix(s.URL, "http://")
	case <-r.Done():
		t.Fatalf("run: %v", r.Err())
	case <-time.After(waitTimeout):
		t.Fatal("the chat server did not start")
	}
	return s
}

// TestHelp: -h prints the usage and exits 0, with no log line.
func TestHelp(t *testing.T) { exampletest.CheckHelp(t, "chat", "addr", "data", "v") }

// TestLogColour: logs are coloured on a terminal only.
func TestLogColour(t *testing.T) { exampletest.CheckLogColour(t, newLogger) }
