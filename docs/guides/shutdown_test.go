package guides_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wsactor/wsactor/transport"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
)

// The shutdown sequence of every server: on the signal, Handler.Shutdown
// (new upgrades get 503, every connection is closed with 1001, and it waits
// for them), then http.Server.Shutdown.
func Example_gracefulShutdown() {
	// In main: ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, stop := context.WithCancel(context.Background())

	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor { return &greeter{} }, nil)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := transport.NewServer(ln.Addr().String(), h) // header, read and idle timeouts
	go func() { _ = srv.Serve(ln) }()

	client, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	_, _, _ = client.ReadMessage() // welcome
	clientSaw := make(chan error, 1)
	go func() {
		_, _, err := client.ReadMessage()
		clientSaw <- err
	}()

	stop() // SIGINT
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := errors.Join(h.Shutdown(sctx), srv.Shutdown(sctx)); err != nil {
		log.Fatal(err) // sctx ended first: connections were still open
	}
	fmt.Println("client:", <-clientSaw)

	// A Handler that is shutting down, or shut down, refuses upgrades.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ws", nil))
	fmt.Println("upgrade after shutdown:", rec.Code, rec.Header().Get("Retry-After"))
	// Output:
	// client: websocket: close 1001 (going away): server shutting down
	// upgrade after shutdown: 503 5
}
