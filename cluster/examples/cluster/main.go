// Command cluster runs wsactor's chat on a cluster of nodes on one machine:
// an etcd (started here on 127.0.0.1 with a temporary data directory,
// unless -etcd names one) and three node processes, each serving the chat
// page. Users on different nodes who join the same room chat together; the
// room is a grain on one of the nodes, and kill -9 of that node moves it to
// another (see docs/cluster.md).
//
//	go run ./examples/cluster            # from the cluster module: etcd + 3 nodes on :8081-8083
//	go run ./examples/cluster node -http 127.0.0.1:8081 -etcd 127.0.0.1:2379   # one node
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "node" {
		err = runNode(ctx, os.Args[2:], os.Stdout)
	} else {
		err = runCluster(ctx, os.Args[1:], os.Stdout)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runCluster starts etcd (unless -etcd is given) and -nodes node processes
// of this same program, prints their pages' URLs, and stops them all when
// ctx ends.
func runCluster(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of nodes")
	port := fs.Int("http-port", 8081, "HTTP port of the first node; the others follow")
	endpoint := fs.String("etcd", "", "use this etcd (host:port) instead of starting one")
	level := fs.String("log", "info", "the nodes' log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ep := *endpoint
	if ep == "" {
		bin := findEtcd()
		if bin == "" {
			return errors.New("etcd not found: install it (Debian: apt-get install etcd-server) or pass -etcd host:port")
		}
		var logs io.Writer = io.Discard
		if *level == "debug" {
			logs = os.Stderr
		}
		e, err := startEtcd(ctx, bin, logs)
		if err != nil {
			return err
		}
		defer e.Stop()
		ep = strings.TrimPrefix(e.Endpoint, "http://")
		fmt.Fprintf(out, "etcd on %s\n", ep)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = c.Process.Kill()
			}
		}
	}()
	for i := range *nodes {
		c := exec.Command(self, "node", "-http", fmt.Sprintf("127.0.0.1:%d", *port+i), "-etcd", ep, "-log", *level)
		c.Stderr = os.Stderr
		stdout, err := c.StdoutPipe()
		if err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			return err
		}
		cmds = append(cmds, c)
		ready := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "READY ") {
					ready <- sc.Text()
				}
			}
		}()
		select {
		case line := <-ready:
			fields := strings.Fields(line)
			fmt.Fprintf(out, "node %d (pid %d): chat page http://%s/  (%s)\n", i+1, c.Process.Pid,
				strings.TrimPrefix(fields[1], "http="), fields[2])
		case <-time.After(60 * time.Second):
			return fmt.Errorf("node %d did not start", i+1)
		case <-ctx.Done():
			return nil
		}
	}
	fmt.Fprintln(out, "open two pages on different nodes, join the same room and chat; kill -9 a node to see its rooms move. Ctrl-C stops everything.")
	<-ctx.Done()
	return nil
}
