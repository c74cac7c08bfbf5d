package exampletest

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// Serve runs h on a loopback HTTP server with transport.NewServer's
// timeouts and limits, as a program serves it, and returns its ws:// URL.
// stop shuts down h first (closing its WebSockets with 1001 and waiting for
// them), then the server: httptest's Close does not wait for hijacked
// connections. It takes no testing.TB because the docs' Example functions,
// which have none, call it; the caller must call stop.
func Serve(h *actors.Handler) (url string, stop func()) {
	srv := httptest.NewUnstartedServer(h)
	srv.Config = transport.NewServer("", h)
	srv.Start()
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			log.Print(err)
		}
		srv.Close()
	}
}

// Get returns the body of a GET of url, failing the test on an error or a
// status other than 200.
func Get(t testing.TB, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}
