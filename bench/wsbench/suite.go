package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// preset is a suite scenario: a scenario with fixed parameters.
type preset struct {
	scenario                               string
	conns, rooms, msgs, size, window, rate int
	srcIPs                                 int
	duration, settle                       time.Duration
	note                                   string
}

func (p preset) describe() string {
	switch p.scenario {
	case "idle":
		return fmt.Sprintf("idle: %d connections in %d rooms", p.conns, p.rooms)
	case "echo":
		return fmt.Sprintf("echo: %d connections, %d B, %s", p.conns, p.size, p.duration)
	case "upgrade":
		return fmt.Sprintf("upgrade: %d workers opening and closing connections (into %d rooms) for %s, over %d source addresses", p.conns, p.rooms, p.duration, p.srcIPs)
	}
	return fmt.Sprintf("%s: %d connections in %d rooms, %d msgs × %d B per sender, window %d, rate %s%s",
		p.scenario, p.conns, p.rooms, p.msgs, p.size, p.window, rateText(p.rate), p.note)
}

var presetOrder = []string{"fanout", "fanout1k", "fanout1k50", "fanout5k", "echo", "echo1", "idle", "deflate", "upgrade"}

var presets = map[string]preset{
	// Throughput: 10 rooms of 100, every sender as fast as its window
	// allows. Latency here is the window's queueing (Little's law), not a
	// figure to compare: see fanout1k.
	"fanout": {scenario: "fanout", conns: 1000, rooms: 10, msgs: 1000, size: 256, window: 64},
	// Latency to 1,000 members at a light rate every peer sustains
	// (20 broadcasts/s = 20,000 deliveries/s).
	"fanout1k": {scenario: "fanout", conns: 1000, rooms: 1, msgs: 100, size: 256, window: 64, rate: 20, note: " (latency, light load)"},
	// The same room at 50 broadcasts/s (50,000 deliveries/s).
	"fanout1k50": {scenario: "fanout", conns: 1000, rooms: 1, msgs: 250, size: 256, window: 64, rate: 50, note: " (latency, heavier load)"},
	// Issue 16's room: 5,000 members at 20 broadcasts/s (100,000
	// deliveries/s).
	"fanout5k": {scenario: "fanout", conns: 5000, rooms: 1, msgs: 100, size: 256, window: 64, rate: 20, note: " (latency, 5,000 members)"},
	"echo":     {scenario: "echo", conns: 50, size: 64, duration: 3 * time.Second},
	// One message's trip at light load: one connection, one message at a
	// time (send to the echo's arrival).
	"echo1":   {scenario: "echo", conns: 1, size: 64, duration: 3 * time.Second},
	"idle":    {scenario: "idle", conns: 10000, rooms: 100, settle: 2 * time.Second},
	"deflate": {scenario: "deflate", conns: 1000, rooms: 10, msgs: 100, size: 2048, window: 32},
	// Handshakes per second: connect, upgrade, close, 50 at a time.
	"upgrade": {scenario: "upgrade", conns: 50, rooms: 10, duration: 3 * time.Second, srcIPs: 8},
}

// quickPresets are for the CI smoke: correctness only, a few seconds.
var quickPresets = map[string]preset{
	"fanout":     {scenario: "fanout", conns: 60, rooms: 3, msgs: 200, size: 128, window: 16},
	"fanout1k":   {scenario: "fanout", conns: 50, rooms: 1, msgs: 50, size: 128, window: 16, rate: 200},
	"fanout1k50": {scenario: "fanout", conns: 50, rooms: 1, msgs: 50, size: 128, window: 16, rate: 400},
	"fanout5k":   {scenario: "fanout", conns: 100, rooms: 1, msgs: 30, size: 128, window: 16, rate: 200},
	"echo":       {scenario: "echo", conns: 4, size: 64, duration: 500 * time.Millisecond},
	"echo1":      {scenario: "echo", conns: 1, size: 64, duration: 300 * time.Millisecond},
	"idle":       {scenario: "idle", conns: 200, rooms: 4, settle: 300 * time.Millisecond},
	"deflate":    {scenario: "deflate", conns: 30, rooms: 3, msgs: 50, size: 2048, window: 8},
	"upgrade":    {scenario: "upgrade", conns: 4, rooms: 2, duration: 500 * time.Millisecond},
}

func (p preset) apply(cfg config) config {
	cfg.scenario = p.scenario
	cfg.conns, cfg.rooms, cfg.msgs, cfg.size, cfg.window, cfg.rate = p.conns, p.rooms, p.msgs, p.size, p.window, p.rate
	if p.duration > 0 {
		cfg.duration = p.duration
	}
	if p.settle > 0 {
		cfg.settle = p.settle
	}
	if p.srcIPs > 0 {
		cfg.srcIPs = p.srcIPs
	}
	return cfg
}

// runSuite runs every scenario against every peer, interleaved: for each
// round, for each scenario, each peer in turn. It returns the exit code: 1
// if any run failed its correctness checks.
func runSuite(base config, peerNames, scenarios []string, rounds int, outPath string, quick bool) int {
	table := presets
	if quick {
		table = quickPresets
	}
	for _, s := range scenarios {
		if _, ok := table[s]; !ok {
			fatal(fmt.Errorf("unknown suite scenario %q", s))
		}
	}
	for _, p := range peerNames {
		if _, ok := peers[p]; !ok {
			fatal(fmt.Errorf("unknown peer %q", p))
		}
	}
	var out io.Writer = io.Discard
	if outPath != "" {
		f, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		out = f
	}
	results := map[string]map[string][]*result{} // scenario -> peer -> runs
	failed := 0
	started := time.Now()
	for round := 1; round <= rounds; round++ {
		for _, s := range scenarios {
			p := table[s]
			for _, peer := range peerNames {
				cfg := p.apply(base)
				cfg.server, cfg.round = peer, round
				fmt.Fprintf(os.Stderr, "== round %d/%d  %-8s %-10s (%s)\n", round, rounds, s, peer, time.Since(started).Round(time.Second))
				res, err := runOne(cfg)
				if err != nil {
					res = newResult(cfg, &server{name: peer})
					res.Errors = append(res.Errors, err.Error())
					res.OK = false
				}
				res.Preset = s
				if !res.OK {
					failed++
				}
				b, _ := json.Marshal(res)
				fmt.Fprintln(out, string(b))
				emit(os.Stdout, res, base.jsonOnly)
				if results[s] == nil {
					results[s] = map[string][]*result{}
				}
				results[s][peer] = append(results[s][peer], res)
				runtime.GC()
				// Let sockets in TIME_WAIT and the last server's exit settle.
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
	fmt.Printf("\n# Suite: %d rounds, peers interleaved in the order %s; medians of the OK runs (n = OK runs)\n",
		rounds, strings.Join(peerNames, ", "))
	for _, s := range scenarios {
		printSummary(os.Stdout, s, table[s], peerNames, results[s])
	}
	if failed > 0 {
		fmt.Printf("\n%d runs FAILED their correctness checks (see the JSON lines)\n", failed)
		return 1
	}
	return 0
}

type metric struct {
	name   string
	get    func(*result) float64
	higher bool // higher is better
	format string
}

var (
	mDeliv  = metric{"deliveries/s", func(r *result) float64 { return r.DeliveriesPerSec }, true, "%.0f"}
	mRTT    = metric{"round trips/s", func(r *result) float64 { return r.MsgsPerSec }, true, "%.0f"}
	mP50    = metric{"p50 µs", func(r *result) float64 { return r.P50us }, false, "%.0f"}
	mP99    = metric{"p99 µs", func(r *result) float64 { return r.P99us }, false, "%.0f"}
	mMax    = metric{"max µs", func(r *result) float64 { return r.MaxUs }, false, "%.0f"}
	mSrvCPU = metric{"server CPU %", func(r *result) float64 { return r.ServerCPUPct }, false, "%.0f"}
	mTool   = metric{"tool CPU %", func(r *result) float64 { return r.ToolCPUPct }, false, "%.0f"}
	mOther  = metric{"other procs CPU %", func(r *result) float64 { return r.OtherCPUPct }, false, "%.0f"}
	mCPUPer = metric{"server CPU µs/delivery", func(r *result) float64 { return r.ServerCPUusPer }, false, "%.2f"}
	mRSS    = metric{"RSS bytes/conn", func(r *result) float64 { return r.RSSPerConnB }, false, "%.0f"}
	mConn   = metric{"connected", func(r *result) float64 { return float64(r.Connected) }, true, "%.0f"}
	mUpg    = metric{"upgrades/s", func(r *result) float64 { return r.MsgsPerSec }, true, "%.0f"}
	mCPUUpg = metric{"server CPU µs/upgrade", func(r *result) float64 { return r.ServerCPUusPer }, false, "%.1f"}
)

func metricsFor(p preset) []metric {
	switch {
	case p.scenario == "idle":
		return []metric{mRSS, mConn}
	case p.scenario == "upgrade":
		return []metric{mUpg, mP50, mP99, mSrvCPU, mCPUUpg, mTool, mOther}
	case p.scenario == "echo":
		return []metric{mRTT, mP50, mP99, mMax, mSrvCPU, mTool, mOther}
	case p.rate > 0:
		return []metric{mP50, mP99, mMax, mDeliv, mSrvCPU, mCPUPer, mTool, mOther}
	}
	return []metric{mDeliv, mP50, mP99, mMax, mSrvCPU, mCPUPer, mTool, mOther}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printSummary prints a markdown table of medians per peer, then the
// ratios of the first peer (wsactor) to each other peer.
func printSummary(w io.Writer, name string, p preset, peerNames []string, runs map[string][]*result) {
	ms := metricsFor(p)
	fmt.Fprintf(w, "\n## %s — %s\n\n", name, p.describe())
	fmt.Fprintf(w, "| peer | n |")
	for _, m := range ms {
		fmt.Fprintf(w, " %s |", m.name)
	}
	fmt.Fprintf(w, " bottleneck (last run) |\n|---|---|")
	for range ms {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---|\n")
	med := map[string][]float64{}
	for _, peer := range peerNames {
		var ok []*result
		for _, r := range runs[peer] {
			if r.OK {
				ok = append(ok, r)
			}
		}
		fmt.Fprintf(w, "| %s | %d/%d |", peer, len(ok), len(runs[peer]))
		for _, m := range ms {
			xs := make([]float64, 0, len(ok))
			for _, r := range ok {
				xs = append(xs, m.get(r))
			}
			v := median(xs)
			med[peer] = append(med[peer], v)
			if math.IsNaN(v) {
				fmt.Fprintf(w, " — |")
			} else {
				fmt.Fprintf(w, " "+m.format+" |", v)
			}
		}
		last := ""
		if n := len(runs[peer]); n > 0 {
			last = runs[peer][n-1].Bottleneck
			if !runs[peer][n-1].OK {
				last = "FAILED: " + strings.Join(runs[peer][n-1].Errors, "; ")
			}
		}
		fmt.Fprintf(w, " %s |\n", last)
	}
	if len(peerNames) < 2 {
		return
	}
	us := peerNames[0]
	fmt.Fprintf(w, "\nRatios %s ÷ peer (medians; for ↑ metrics above 1 is better for %s, for ↓ below 1 is):\n\n| metric |", us, us)
	for _, peer := range peerNames[1:] {
		fmt.Fprintf(w, " ÷ %s |", peer)
	}
	fmt.Fprintf(w, "\n|---|")
	for range peerNames[1:] {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "\n")
	for i, m := range ms {
		arrow := "↓"
		if m.higher {
			arrow = "↑"
		}
		fmt.Fprintf(w, "| %s %s |", m.name, arrow)
		for _, peer := range peerNames[1:] {
			a, b := med[us][i], med[peer][i]
			if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
				fmt.Fprintf(w, " — |")
				continue
			}
			fmt.Fprintf(w, " %.2f |", a/b)
		}
		fmt.Fprintf(w, "\n")
	}
}
