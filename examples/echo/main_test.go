package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// syncBuffer is a bytes.Buffer safe for the example's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEchoExample(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-n", "3"}, &out) }()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "server still running") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // what SIGINT does
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	got := out.String()
	if n := len(regexp.MustCompile(`echo \d+: round trip`).FindAllString(got, -1)); n != 3 {
		t.Fatalf("want 3 round trips, got %d in:\n%s", n, got)
	}
	for _, want := range []string{"closed: 1000", "shut down"} {
		if !strings.Contains(got, want) {
			t.Fatalf("output lacks %q:\n%s", want, got)
		}
	}
}
