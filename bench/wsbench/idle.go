package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"time"
)

// runIdle opens cfg.conns idle connections in cfg.rooms rooms and reports
// the server's RSS per connection. It opens as many as it can: when the
// descriptor limit (here or in the server) or the ports run out, it reports
// how many it held.
func runIdle(cfg config, srv *server) (*result, error) {
	res := newResult(cfg, srv)
	res.SrcIPs = cfg.srcIPs
	// Two descriptors per connection would be needed if client and server
	// shared a process; they do not, but leave room for the tool's own.
	res.NoFileSoft, res.NoFileHard = raiseNoFile(uint64(cfg.conns) + 1024)
	if res.pid == 0 {
		return nil, fmt.Errorf("idle needs the server's PID: use -server, or -url with -pid")
	}
	n := cfg.conns
	if avail := int(res.NoFileSoft) - 128; res.NoFileSoft > 0 && n > avail {
		// One descriptor per connection here, and the server (another
		// process) needs as many under its own limit; keep a margin for
		// /proc reads and the runtime.
		n = avail
		res.CappedBy = fmt.Sprintf("RLIMIT_NOFILE %d (hard limit; raising it needs CAP_SYS_RESOURCE): opened %d of %d", res.NoFileSoft, n, cfg.conns)
	}
	rooms := max(cfg.rooms, 1)
	tag := fmt.Sprintf("idle-%x", rand.Uint32())
	// Let the freshly started server settle before the baseline.
	time.Sleep(500 * time.Millisecond)
	rss0, err := rssKB(res.pid)
	if err != nil {
		return nil, err
	}
	res.ServerRSSBeforeKB = rss0
	m := beginMeasure(res.pid)
	cs, err := connectAll(cfg, n, func(i int) string { return fmt.Sprintf("%s-%d", tag, i%rooms) }, 512, false)
	res.Seconds = time.Since(m.start).Seconds()
	if err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("connect: %v", err))
	}
	res.Connected = len(cs)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func(c *wsConn) { defer wg.Done(); c.readLoop(payloadFixed, false) }(c)
	}
	time.Sleep(cfg.settle)
	m.end()
	rss1, err := rssKB(res.pid)
	if err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("server gone: %v", err))
	}
	res.ServerRSSAfterKB = rss1
	res.ServerHWMKB, _ = hwmKB(res.pid)
	runtime.GC()
	res.ToolRSSKB, _ = rssKB(os.Getpid())
	if len(cs) > 0 {
		res.RSSPerConnB = float64(rss1-rss0) * 1024 / float64(len(cs))
	}
	res.setCPU(m)
	res.Bottleneck = fmt.Sprintf("connect phase + settle: server %.1f s CPU, tool %.1f s CPU, machine %.0f%%", res.ServerCPUs, res.ToolCPUs, res.MachineCPUPct)

	for _, c := range cs {
		_ = c.nc.Close()
	}
	wg.Wait()
	for _, c := range cs {
		if c.serverShut {
			res.ClosedByServer++
		}
	}
	res.check()
	return res, nil
}
