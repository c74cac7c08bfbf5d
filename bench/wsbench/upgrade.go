package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// runUpgrade measures how many connections a server takes per second: each
// of cfg.conns workers, for cfg.duration, opens a TCP connection, does the
// upgrade (into one of cfg.rooms rooms, as the other scenarios), sends a
// close frame and waits for the server to end the connection. The server
// closes first, so TIME_WAIT stays on its side and the tool's ports last;
// cfg.srcIPs spreads the connections over more source addresses still.
// Latency is the handshake's: from the TCP connect to the 101.
func runUpgrade(cfg config, srv *server) (*result, error) {
	res := newResult(cfg, srv)
	res.SrcIPs = cfg.srcIPs
	rooms := max(cfg.rooms, 1)
	srcs := sourceIPs(cfg.srcIPs)
	var (
		done, failed atomic.Int64
		h            hist
		histMu       sync.Mutex
		errMu        sync.Mutex
		wg           sync.WaitGroup
	)
	time.Sleep(300 * time.Millisecond) // let a freshly started server settle
	m := beginMeasure(res.pid)
	deadline := time.Now().Add(cfg.duration)
	for w := range max(cfg.conns, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i += cfg.conns {
				o := dialOptions{addr: cfg.addr, path: fmt.Sprintf("%s?room=up-%d", cfg.path, i%rooms), src: srcs[i%len(srcs)], bufSize: 256, timeout: 10 * time.Second}
				start := time.Now()
				c, err := dial(o)
				if err != nil {
					if failed.Add(1) == 1 {
						errMu.Lock()
						res.Errors = append(res.Errors, fmt.Sprintf("dial: %v", err))
						errMu.Unlock()
					}
					continue
				}
				took := time.Since(start)
				histMu.Lock()
				h.add(int64(took))
				histMu.Unlock()
				// Close as a client does: our close frame, the server's
				// answer, then the server ends TCP (RFC 6455 7.1.1).
				c.closing.Store(true)
				_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
				_ = c.send(0x8, []byte{0x03, 0xe8})
				_, _ = io.Copy(io.Discard, c.br)
				_ = c.nc.Close()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	m.end()
	res.Seconds = m.wall.Seconds()
	res.Connected = int(done.Load())
	res.Delivered = done.Load() // for the CPU per upgrade
	if res.Seconds > 0 {
		res.MsgsPerSec = float64(done.Load()) / res.Seconds
	}
	res.P50us, res.P99us, res.MaxUs = h.quantile(0.50)/1e3, h.quantile(0.99)/1e3, float64(h.max)/1e3
	res.setCPU(m)
	if n := failed.Load(); n > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("%d upgrades failed", n))
	}
	res.check()
	return res, nil
}
