package actors_test

import (
	"context"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// Options are checked once, by NewHandler and Dial: an invalid value is
// their error, not a 500 or 503 on every upgrade later.
func TestOptionsErrorsAreReturnedAtConstruction(t *testing.T) {
	t.Parallel()
	system := actors.NewSystem(zerolog.Nop())
	nop := func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) }

	h, err := actors.NewHandler(system, nop, &actors.HandlerOptions{
		AcceptOptions: transport.AcceptOptions{CompressionLevel: 12},
	})
	if err == nil || h != nil || !strings.Contains(err.Error(), "CompressionLevel 12") {
		t.Errorf("NewHandler with CompressionLevel 12: %v, %v; want an error and no Handler", h, err)
	}
	if _, err := actors.NewHandler(system, nop, &actors.HandlerOptions{
		AcceptOptions: transport.AcceptOptions{OriginPatterns: []string{"[bad"}},
	}); err == nil {
		t.Error("NewHandler with a malformed origin pattern: nil error")
	}
	if _, err := actors.NewHandler(nil, nop, nil); err == nil {
		t.Error("NewHandler without a system: nil error")
	}

	// Nothing is dialed: the port is closed, and the error is the options'.
	opts := &actors.DialOptions{}
	opts.Overflow = 9
	c, _, err := actors.Dial(context.Background(), system, "ws://127.0.0.1:1/", nop, opts)
	if err == nil || c != nil || !strings.Contains(err.Error(), "Overflow 9") {
		t.Errorf("Dial with Overflow 9: %v, %v; want the options' error", c, err)
	}
}

// The defaults are applied when the Handler is built, from a copy: changing
// the options afterwards changes nothing, and the limits are the ones set.
func TestHandlerOptionsCopiedAtConstruction(t *testing.T) {
	t.Parallel()
	events := make(chan any, 16)
	opts := &actors.HandlerOptions{}
	opts.ReadLimit = 8
	_, url, _ := testServer(t, echoProducer(events), opts)
	opts.ReadLimit = 1 << 20 // too late: the Handler has its own copy

	ws := dial(t, url)
	if err := ws.WriteMessage(1, []byte("more than eight bytes")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err == nil || !strings.Contains(err.Error(), "1009") {
		t.Errorf("read after a message over ReadLimit: %v, want close 1009", err)
	}
}
