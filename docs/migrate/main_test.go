package migrate_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.VerifyNoLeaks(m) }

// serve runs h on a loopback HTTP server and returns its ws:// URL; stop
// shuts down h, then the server (see exampletest.Serve). The snippets in
// docs/migrating-from-ws.md call it by this name.
func serve(h *actors.Handler) (url string, stop func()) { return exampletest.Serve(h) }

// dialTimeout is the context every example's client dials with.
func dialTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
