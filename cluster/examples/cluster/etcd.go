package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// etcdServer is an etcd (Debian: apt-get install etcd-server) started on
// 127.0.0.1 with free ports and a temporary data directory, for the example
// and its tests.
type etcdServer struct {
	// Endpoint is the client URL, http://127.0.0.1:port.
	Endpoint string
	cmd      *exec.Cmd
	dir      string
	done     chan struct{}
}

// findEtcd returns the path of the etcd binary, or "" if there is none.
func findEtcd() string {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	return ""
}

// startEtcd starts bin and waits until it answers /health.
func startEtcd(ctx context.Context, bin string, logs io.Writer) (*etcdServer, error) {
	dir, err := os.MkdirTemp("", "wsactor-etcd-")
	if err != nil {
		return nil, err
	}
	client, peer := freePort(), freePort()
	if client == "" || peer == "" {
		os.RemoveAll(dir)
		return nil, errors.New("etcd: no free port")
	}
	e := &etcdServer{Endpoint: "http://" + client, dir: dir, done: make(chan struct{})}
	e.cmd = exec.Command(bin,
		"--name", "wsactor-test",
		"--data-dir", dir,
		"--listen-client-urls", e.Endpoint,
		"--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", "http://"+peer,
		"--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "wsactor-test=http://"+peer,
		"--log-level", "warn",
	)
	e.cmd.Stdout, e.cmd.Stderr = logs, logs
	// Its own process group: a Ctrl-C in the terminal must not stop etcd
	// before the nodes have left it.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err = e.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("etcd: %w", err)
	}
	go func() { _ = e.cmd.Wait(); close(e.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(e.Endpoint + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"true"`) {
				return e, nil
			}
		}
		select {
		case <-e.done:
			e.Stop()
			return nil, errors.New("etcd exited while starting (see its log)")
		case <-ctx.Done():
			e.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.Stop()
			return nil, errors.New("etcd: not healthy after 30s")
		}
	}
}

// Stop kills etcd and removes its data.
func (e *etcdServer) Stop() {
	if e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
		<-e.done
	}
	os.RemoveAll(e.dir)
}

// freePort returns 127.0.0.1:port with a port that was free a moment ago.
func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer ln.Close()
	return ln.Addr().String()
}
