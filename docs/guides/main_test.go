package guides_test

import (
	"testing"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.VerifyNoLeaks(m) }

// serve runs h on a loopback HTTP server and returns its ws:// URL; stop
// shuts down h, then the server (see exampletest.Serve). The snippets in the
// guides call it by this name.
func serve(h *actors.Handler) (url string, stop func()) { return exampletest.Serve(h) }
