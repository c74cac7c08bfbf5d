package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wsactor/wsactor/transport"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/cluster"
	"github.com/wsactor/wsactor/supervisor"
)

// runNode runs one cluster node until ctx ends: protoactor's remote on
// -remote, the etcd provider on -etcd, and an HTTP server on -http with the
// chat page (/), its WebSocket (/ws), a channels hub whose topics live on
// the cluster (/channels: the channels protocol, any client of package
// channel or the browser client; ?user= names the user) and three JSON
// endpoints for tests and curious people: /debug/stats, /debug/room?name=
// and /debug/rank?topic= (the topic's owner first, then its backup). Once
// serving it prints "READY http=<addr> remote=<addr>" on out.
func runNode(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8081", "HTTP listen address (port 0: any free port)")
	remoteAddr := fs.String("remote", "127.0.0.1:0", "cluster (gRPC) listen address")
	advertise := fs.String("advertise", "", "address other nodes dial, if not -remote's (e.g. a pod IP)")
	endpoints := fs.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	clusterName := fs.String("cluster", "wsactor-example", "cluster name: nodes with the same name and etcd form one cluster")
	level := fs.String("log", "info", "log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	label := ln.Addr().String()
	zerolog.TimeFieldFormat = time.RFC3339Nano // this program's logs only: failover is a matter of milliseconds
	logger := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"}).Level(lvl).
		With().Timestamp().Str("http", label).Logger()
	system := actors.NewSystem(logger.Level(max(lvl, zerolog.WarnLevel)))

	host, portStr, err := net.SplitHostPort(*remoteAddr)
	if err != nil {
		return err
	}
	var port int
	if _, err := fmt.Sscan(portStr, &port); err != nil {
		return fmt.Errorf("-remote port: %w", err)
	}
	// The etcd provider is made once the node's remote has started (see
	// cluster.Config.NewProvider).
	newProvider := func() (pcluster.ClusterProvider, error) {
		p, err := etcd.NewWithConfig("/wsactor", clientv3.Config{
			Endpoints:   strings.Split(*endpoints, ","),
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("etcd: %w", err)
		}
		return p, nil
	}
	node, err := cluster.Start(system, cluster.Config{
		Name: *clusterName, NewProvider: newProvider, Host: host, Port: port, AdvertisedHost: *advertise, Logger: logger,
	})
	if err != nil {
		return err
	}

	h, err := actors.NewHandler(system, func() actor.Actor { return &chat{node: node, label: label} }, &actors.HandlerOptions{
		Tree:      node.Tree(),
		Logger:    logger,
		Heartbeat: supervisor.HeartbeatOptions{Interval: 25 * time.Second},
	})
	if err != nil {
		return err
	}
	// Channel topics on the cluster: every push to a topic is published to
	// its members, with presence and a history clients recover from, also
	// after the death of the topic's owner node.
	hub, err := channel.NewHub(system, &channel.Options{
		Cluster: node.Channels(),
		Authenticate: func(r *http.Request) (channel.Identity, error) {
			u := r.URL.Query().Get("user")
			return channel.Identity{User: u, Meta: map[string]string{"node": label}}, nil
		},
		Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{ClientPublish: true, Presence: true, History: 10000}
		},
		Logger: logger,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	mux.Handle("/channels", hub)
	mux.HandleFunc("/debug/rank", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, node.Channels().Rank(r.URL.Query().Get("topic")))
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	})
	mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"address": node.Address(), "http": label, "members": node.Members(), "stats": node.Stats()})
	})
	mux.HandleFunc("/debug/room", func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		m, err := node.Room(r.URL.Query().Get("name")).Members(rctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, m)
	})
	srv := transport.NewServer(ln.Addr().String(), mux) // header, read and idle timeouts
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(out, "READY http=%s remote=%s\n", label, node.Address())
	logger.Info().Str("remote", node.Address()).Msgf("chat page on http://%s/", label)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// WebSockets first (they are hijacked: http.Server.Shutdown does not
	// wait for them), then HTTP, then the cluster member, which leaves etcd
	// at once so the other nodes take over its rooms without waiting for
	// its lease to expire.
	if e := h.Shutdown(sctx); e != nil {
		logger.Warn().Err(e).Msg("websocket shutdown")
	}
	if e := hub.Close(sctx); e != nil {
		logger.Warn().Err(e).Msg("channels shutdown")
	}
	_ = srv.Shutdown(sctx)
	_ = node.Shutdown(sctx, true)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
