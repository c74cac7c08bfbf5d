package migrate_test

import (
	"context"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/actors"
)

func TestMain(m *testing.M) {
	// protoactor's dead-letter throttle keeps a goroutine for its interval
	// (1s) after a dead letter is logged; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// serve runs h on a loopback HTTP server and returns its ws:// URL. stop
// shuts down h first (closing its WebSockets with 1001 and waiting for
// them), then the server: httptest's Close does not wait for hijacked
// connections.
func serve(h *actors.Handler) (url string, stop func()) {
	srv := httptest.NewServer(h)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			log.Print(err)
		}
		srv.Close()
	}
}

// dialTimeout is the context every example's client dials with.
func dialTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
