package metrics_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/metrics"
)

// Scrapes while the Handler shuts down with traffic in flight: every one
// succeeds, no counter goes down, and the last one shows every connection
// closed with 1001 by the server and none open.
func TestScrapeDuringShutdown(t *testing.T) {
	const conns = 40
	system := actors.NewSystem(zerolog.Nop())
	var accepted atomic.Int64 // sends the queues took: the shutdown must write them all
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				for range 20 { // a backlog for the shutdown to drain
					if m.Conn.Send(m.Type, m.Data) == nil {
						accepted.Add(1)
					}
				}
			}
		})
	}, &actors.HandlerOptions{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewHandlerCollector(h, "/ws"))
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	var clients []*websocket.Conn
	for range conns {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 1000)))
	}
	var wg sync.WaitGroup
	for _, c := range clients { // clients read until the server closes them
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.Shutdown(ctx)
	}()
	last := map[string]float64{}
	scrapes := 0
	check := func() {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("scrape %d: %v", scrapes, err)
		}
		scrapes++
		for _, mf := range mfs {
			if mf.GetType() != 0 { // counters only (dto.MetricType_COUNTER)
				continue
			}
			for _, m := range mf.GetMetric() {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				v := m.GetCounter().GetValue()
				if v < last[key] {
					t.Fatalf("scrape %d: %s went down from %v to %v", scrapes, key, last[key], v)
				}
				last[key] = v
			}
		}
	}
	for shut := false; !shut; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			shut = true
		default:
		}
		check()
	}
	wg.Wait()
	check()
	if last["wsactor_closes_total,code=1001,endpoint=/ws,side=server"] != conns {
		t.Fatalf("closes after shutdown: %v", last)
	}
	if out := last["wsactor_messages_total,direction=out,endpoint=/ws"]; out != float64(accepted.Load()) || out == 0 {
		t.Fatalf("messages out %v, want the %d sends accepted (the backlog drained)", out, accepted.Load())
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "wsactor_connections_open" && mf.GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Fatal("connections open after Shutdown")
		}
	}
	t.Logf("%d scrapes during the shutdown", scrapes)
}
