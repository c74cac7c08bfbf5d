package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.VerifyNoLeaks(m) }

func TestEchoExample(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out exampletest.Buffer
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
