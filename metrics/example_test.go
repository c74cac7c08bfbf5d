package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/metrics"
)

// A server's /metrics: its connections, the process's counters and the
// actor system's, in one registry.
func Example() {
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				_ = m.Conn.Send(m.Type, m.Data) // echo
			}
		})
	}, nil)
	if err != nil {
		panic(err)
	}
	defer h.Shutdown(context.Background())

	sys := metrics.NewSystemCollector(system)
	defer sys.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewHandlerCollector(h, "/ws"), metrics.NewProcessCollector(), sys)

	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, echo, _ := c.ReadMessage()
	fmt.Printf("echo: %s\n", echo)

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(page), "\n") {
		for _, want := range []string{`wsactor_connections_open{`, `wsactor_upgrades_total{endpoint="/ws",status="101"}`, `wsactor_messages_total{direction="in"`} {
			if strings.HasPrefix(line, want) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// echo: hello
	// wsactor_connections_open{endpoint="/ws"} 1
	// wsactor_messages_total{direction="in",endpoint="/ws"} 1
	// wsactor_upgrades_total{endpoint="/ws",status="101"} 1
}
