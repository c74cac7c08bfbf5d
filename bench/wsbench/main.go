// Command wsbench is wsactor's WebSocket load tool. It opens C connections
// in R rooms against a server that speaks the benchmark protocol (GET
// /ws?room=NAME; every message a client sends is broadcast to every member of
// its room, the sender included) and runs one scenario:
//
//	fanout   one sender per room sends M messages of S bytes (at most -window
//	         not yet received by every member); every member counts them and
//	         measures latency from the send time in the payload. Reports
//	         deliveries/s, p50/p99/max latency, lost, duplicated and
//	         out-of-order messages; exits 1 on any of those.
//	echo     every connection is alone in its room and does closed-loop round
//	         trips for -duration: msgs/s and latency percentiles.
//	idle     C idle connections; server RSS per connection (VmRSS before and
//	         after). Raises RLIMIT_NOFILE to its hard limit and can spread
//	         connections over several source addresses 127.0.0.x (-src-ips).
//	deflate  fanout with compressible JSON and permessage-deflate offered;
//	         fails unless every connection negotiated it and compressed
//	         frames arrive. Reports throughput and server CPU.
//
// Every run prints one JSON line (machine-readable) and a table. With
// -server it starts the peer itself (bench/servers: wsactor, gorillahub,
// node, bun), so it knows the server's PID for RSS and CPU (from /proc); with
// -url it uses a running server (add -pid for RSS and CPU). It always reports
// its own CPU time, and says which side was the bottleneck.
//
// -suite runs the scenarios against several peers interleaved (A B C D A B
// C D ...) for -rounds rounds and prints medians and ratios; bench/run.sh
// is the one command that does that.
//
// Load goes to 127.0.0.1 only, and every run is bounded by -timeout.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

type config struct {
	scenario   string
	server     string // peer name, when wsbench starts the server
	serverArgs string
	url        string
	pid        int
	addr, path string

	conns, rooms, msgs, size, window, rate int
	duration, timeout, stall, settle       time.Duration
	dialConcurrency, srcIPs                int
	verify                                 bool
	root, bin                              string
	jsonOnly                               bool
	round                                  int
}

func main() {
	var cfg config
	fs := flag.NewFlagSet("wsbench", flag.ExitOnError)
	fs.StringVar(&cfg.scenario, "scenario", "fanout", "fanout, echo, idle, deflate or upgrade")
	fs.StringVar(&cfg.server, "server", "", "start this peer server and load it: wsactor, gorillahub, node or bun")
	fs.StringVar(&cfg.serverArgs, "server-args", "", "extra arguments for the started server (space-separated)")
	fs.StringVar(&cfg.url, "url", "", "load a running server instead, e.g. ws://127.0.0.1:8080/ws (127.0.0.1 only)")
	fs.IntVar(&cfg.pid, "pid", 0, "with -url: the server's PID, for RSS and CPU")
	fs.IntVar(&cfg.conns, "conns", 1000, "connections (C)")
	fs.IntVar(&cfg.rooms, "rooms", 10, "rooms (R); connection i joins room i%R, and the first connection of each room sends")
	fs.IntVar(&cfg.msgs, "msgs", 1000, "messages per sender (M)")
	fs.IntVar(&cfg.size, "size", 256, "message size in bytes (S, at least 64)")
	fs.IntVar(&cfg.window, "window", 64, "messages a sender may have in flight (not yet received by every member of its room)")
	fs.IntVar(&cfg.rate, "rate", 0, "messages per second per sender (0: as fast as the window allows)")
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "echo: how long to run")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "bound on the measured phase (and on readiness)")
	fs.DurationVar(&cfg.stall, "stall", 5*time.Second, "give up when nothing was delivered for this long (counts as loss)")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "idle: wait this long after connecting before reading RSS")
	fs.IntVar(&cfg.dialConcurrency, "dial-concurrency", 32, "handshakes in flight while connecting")
	fs.IntVar(&cfg.srcIPs, "src-ips", 1, "spread connections over this many source addresses 127.0.0.1, 127.0.0.2, ...")
	fs.BoolVar(&cfg.verify, "verify", false, "inflate compressed messages fully (default: only their header, to keep the tool cheap)")
	fs.StringVar(&cfg.bin, "bin", "", "where the Go peer servers are built (default: <repo>/bench/bin)")
	fs.BoolVar(&cfg.jsonOnly, "json", false, "print only the JSON result lines")
	suite := fs.Bool("suite", false, "run scenarios × peers interleaved for -rounds rounds; print medians and ratios")
	suitePeers := fs.String("peers", "wsactor,gorillahub,node,bun", "suite: peers, in the order they take turns")
	suiteScen := fs.String("scenarios", "fanout,fanout1k,fanout1k50,echo,idle,deflate", "suite: scenarios (presets, see -h text below)")
	rounds := fs.Int("rounds", 5, "suite: rounds")
	out := fs.String("out", "", "suite: also append every JSON result line to this file")
	quick := fs.Bool("quick", false, "suite: tiny presets (correctness smoke for CI)")
	cpuprofile := fs.String("cpuprofile", "", "write the tool's own CPU profile here")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: wsbench [flags]\n\n")
		fmt.Fprintf(w, "  go run ./bench/wsbench -server wsactor -scenario fanout -conns 1000 -rooms 10 -msgs 1000\n")
		fmt.Fprintf(w, "  go run ./bench/wsbench -url ws://127.0.0.1:8080/ws -scenario echo -conns 50\n")
		fmt.Fprintf(w, "  go run ./bench/wsbench -suite -rounds 5        (what bench/run.sh does)\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nsuite presets:\n")
		for _, name := range presetOrder {
			p := presets[name]
			fmt.Fprintf(w, "  %-11s %s\n", name, p.describe())
		}
	}
	_ = fs.Parse(os.Args[1:])

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	if cfg.server != "" || *suite {
		root, err := findRoot()
		if err != nil {
			fatal(err)
		}
		cfg.root = root
		if cfg.bin == "" {
			cfg.bin = root + "/bench/bin"
		}
	}
	if *suite {
		code := runSuite(cfg, splitList(*suitePeers), splitList(*suiteScen), *rounds, *out, *quick)
		pprof.StopCPUProfile()
		os.Exit(code)
	}
	res, err := runOne(cfg)
	if err != nil {
		fatal(err)
	}
	emit(os.Stdout, res, cfg.jsonOnly)
	if !res.OK {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "wsbench:", err)
	os.Exit(2)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runOne runs cfg.scenario once, starting the server if cfg.server is set.
func runOne(cfg config) (*result, error) {
	var srv *server
	switch {
	case cfg.server != "":
		p, ok := peers[cfg.server]
		if !ok {
			return nil, fmt.Errorf("unknown server %q (wsactor, gorillahub, node, bun)", cfg.server)
		}
		cmd, err := p.cmd(cfg.root, cfg.bin, cfg.scenario == "deflate")
		if err != nil {
			return nil, err
		}
		srv, err = startServer(p.name, cmd, strings.Fields(cfg.serverArgs))
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		cfg.addr, cfg.path = srv.addr, "/ws"
	case cfg.url != "":
		u, err := url.Parse(cfg.url)
		if err != nil {
			return nil, err
		}
		if u.Scheme != "ws" {
			return nil, fmt.Errorf("-url: only ws:// (got %q)", u.Scheme)
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
			return nil, fmt.Errorf("-url: load goes to 127.0.0.1 only (got %q)", h)
		}
		cfg.addr, cfg.path = "127.0.0.1:"+u.Port(), u.EscapedPath()
		if cfg.path == "" {
			cfg.path = "/ws"
		}
		if cfg.pid > 0 {
			srv = &server{name: "url", pid: cfg.pid, addr: cfg.addr}
		}
	default:
		return nil, fmt.Errorf("give -server NAME or -url ws://127.0.0.1:PORT/ws")
	}
	switch cfg.scenario {
	case "fanout", "echo", "deflate":
		return runMessages(cfg, srv)
	case "idle":
		return runIdle(cfg, srv)
	case "upgrade":
		return runUpgrade(cfg, srv)
	}
	return nil, fmt.Errorf("unknown scenario %q", cfg.scenario)
}

// result is one run's outcome: the JSON line.
type result struct {
	Scenario string `json:"scenario"`
	Preset   string `json:"preset,omitempty"`
	Server   string `json:"server"`
	Round    int    `json:"round,omitempty"`
	Conns    int    `json:"conns"`
	Rooms    int    `json:"rooms"`
	Msgs     int    `json:"msgs,omitempty"`
	Size     int    `json:"size,omitempty"`
	Window   int    `json:"window,omitempty"`
	Rate     int    `json:"rate,omitempty"`
	Deflate  bool   `json:"deflate"`

	Connected        int   `json:"connected"`
	Negotiated       int   `json:"deflate_negotiated"`
	Sent             int64 `json:"sent,omitempty"`
	Expected         int64 `json:"expected,omitempty"`
	Delivered        int64 `json:"delivered,omitempty"`
	Lost             int64 `json:"lost"`
	Duplicated       int64 `json:"duplicated"`
	OutOfOrder       int64 `json:"out_of_order"`
	Malformed        int64 `json:"malformed"`
	ClosedByServer   int   `json:"closed_by_server"`
	Stalled          bool  `json:"stalled,omitempty"`
	TimedOut         bool  `json:"timed_out,omitempty"`
	Frames           int64 `json:"frames,omitempty"`
	CompressedFrames int64 `json:"compressed_frames,omitempty"`

	Seconds          float64 `json:"seconds"`
	DeliveriesPerSec float64 `json:"deliveries_per_s,omitempty"`
	MsgsPerSec       float64 `json:"msgs_per_s,omitempty"`
	P50us            float64 `json:"p50_us,omitempty"`
	P99us            float64 `json:"p99_us,omitempty"`
	MaxUs            float64 `json:"max_us,omitempty"`

	ServerCPUs     float64 `json:"server_cpu_s"`
	ServerCPUPct   float64 `json:"server_cpu_pct"`
	ToolCPUs       float64 `json:"tool_cpu_s"`
	ToolCPUPct     float64 `json:"tool_cpu_pct"`
	ServerCPUusPer float64 `json:"server_cpu_us_per_delivery,omitempty"`
	MachineCPUPct  float64 `json:"machine_cpu_pct"`
	OtherCPUPct    float64 `json:"other_cpu_pct"`
	Bottleneck     string  `json:"bottleneck"`

	ServerRSSBeforeKB int64   `json:"server_rss_before_kb,omitempty"`
	ServerRSSAfterKB  int64   `json:"server_rss_after_kb,omitempty"`
	ServerHWMKB       int64   `json:"server_rss_peak_kb,omitempty"`
	RSSPerConnB       float64 `json:"server_rss_per_conn_bytes,omitempty"`
	ToolRSSKB         int64   `json:"tool_rss_kb,omitempty"`
	NoFileSoft        uint64  `json:"nofile_soft,omitempty"`
	NoFileHard        uint64  `json:"nofile_hard,omitempty"`
	SrcIPs            int     `json:"src_ips,omitempty"`
	CappedBy          string  `json:"capped_by,omitempty"`

	OK     bool     `json:"ok"`
	Errors []string `json:"errors,omitempty"`

	pid            int
	singleThreaded bool
}

func newResult(cfg config, srv *server) *result {
	r := &result{Scenario: cfg.scenario, Conns: cfg.conns, Rooms: cfg.rooms, Deflate: cfg.scenario == "deflate", Round: cfg.round}
	if cfg.scenario != "idle" && cfg.scenario != "upgrade" {
		r.Size = cfg.size
		if cfg.scenario != "echo" {
			r.Msgs, r.Window, r.Rate = cfg.msgs, cfg.window, cfg.rate
		}
	}
	if cfg.scenario == "echo" {
		r.Rooms = cfg.conns
	}
	if srv != nil {
		r.Server, r.pid = srv.name, srv.pid
		r.singleThreaded = peers[srv.name].singleThreaded
	} else {
		r.Server = "url"
	}
	return r
}

// setCPU fills the CPU fields and names the bottleneck.
func (r *result) setCPU(m *measured) {
	wall := m.wall.Seconds()
	r.ToolCPUs = m.toolCPU.Seconds()
	r.ServerCPUs = m.serverCPU.Seconds()
	if wall > 0 {
		r.ToolCPUPct = 100 * r.ToolCPUs / wall
		r.ServerCPUPct = 100 * r.ServerCPUs / wall
	}
	if r.Delivered > 0 && r.ServerCPUs > 0 {
		r.ServerCPUusPer = 1e6 * r.ServerCPUs / float64(r.Delivered)
	}
	cores := 100 * float64(runtime.NumCPU())
	r.MachineCPUPct = m.machinePct
	r.OtherCPUPct = max(0, m.machinePct-r.ServerCPUPct-r.ToolCPUPct)
	load := fmt.Sprintf("server %.0f%%, tool %.0f%%, other processes %.0f%% of %.0f%%", r.ServerCPUPct, r.ToolCPUPct, r.OtherCPUPct, cores)
	switch {
	case r.pid == 0:
		r.Bottleneck = fmt.Sprintf("unknown (no server PID); tool %.0f%%, machine %.0f%% of %.0f%%", r.ToolCPUPct, r.MachineCPUPct, cores)
	case r.singleThreaded && r.ServerCPUPct >= 90:
		r.Bottleneck = fmt.Sprintf("server: its event loop is one core and it used %.0f%% of one (%s)", r.ServerCPUPct, load)
	case r.MachineCPUPct >= 0.9*cores || r.ServerCPUPct+r.ToolCPUPct >= 0.85*cores:
		side := "the server"
		if r.ToolCPUPct > r.ServerCPUPct {
			side = "the tool"
		}
		if r.OtherCPUPct > max(r.ServerCPUPct, r.ToolCPUPct) {
			side = "other processes (contention)"
		}
		r.Bottleneck = fmt.Sprintf("machine CPU saturated, most by %s: %s", side, load)
	default:
		r.Bottleneck = fmt.Sprintf("no CPU saturated (%s): the window, the rate or latency limits", load)
	}
}

// check applies the correctness rules: fanout and deflate are lossless.
func (r *result) check() {
	if r.ClosedByServer > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d connections closed by the server", r.ClosedByServer))
	}
	if r.Stalled {
		r.Errors = append(r.Errors, "stalled: nothing delivered for the -stall period")
	}
	if r.TimedOut {
		r.Errors = append(r.Errors, "timed out")
	}
	if r.Scenario != "echo" && r.Scenario != "idle" && r.Scenario != "upgrade" {
		if r.Lost != 0 {
			r.Errors = append(r.Errors, fmt.Sprintf("%d messages lost", r.Lost))
		}
	}
	if r.Duplicated != 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d duplicated", r.Duplicated))
	}
	if r.OutOfOrder != 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d out of order", r.OutOfOrder))
	}
	if r.Malformed != 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d malformed", r.Malformed))
	}
	r.OK = len(r.Errors) == 0
}

// emit prints the JSON line and, unless jsonOnly, a table.
func emit(w io.Writer, r *result, jsonOnly bool) {
	b, _ := json.Marshal(r)
	fmt.Fprintln(w, string(b))
	if jsonOnly {
		return
	}
	row := func(k string, v any) { fmt.Fprintf(w, "  %-26s %v\n", k, v) }
	fmt.Fprintf(w, "%s against %s: %s\n", r.Scenario, r.Server, map[bool]string{true: "OK", false: "FAILED"}[r.OK])
	switch r.Scenario {
	case "idle":
		row("connections", fmt.Sprintf("%d of %d (RLIMIT_NOFILE %d/%d, %d source IPs)", r.Connected, r.Conns, r.NoFileSoft, r.NoFileHard, max(r.SrcIPs, 1)))
		if r.CappedBy != "" {
			row("capped by", r.CappedBy)
		}
		row("server RSS before/after", fmt.Sprintf("%d KiB / %d KiB (peak %d KiB)", r.ServerRSSBeforeKB, r.ServerRSSAfterKB, r.ServerHWMKB))
		row("server RSS per connection", fmt.Sprintf("%.0f bytes", r.RSSPerConnB))
		row("tool RSS", fmt.Sprintf("%d KiB", r.ToolRSSKB))
		row("connect time", fmt.Sprintf("%.2f s", r.Seconds))
	case "upgrade":
		row("upgrades", fmt.Sprintf("%d in %.2f s by %d workers (%d source IPs)", r.Connected, r.Seconds, r.Conns, max(r.SrcIPs, 1)))
		row("upgrades/s", fmt.Sprintf("%.0f", r.MsgsPerSec))
		row("handshake p50 / p99 / max", fmt.Sprintf("%.0f / %.0f / %.0f µs", r.P50us, r.P99us, r.MaxUs))
		row("server CPU", fmt.Sprintf("%.2f s (%.0f%% of one core; %.1f µs per upgrade)", r.ServerCPUs, r.ServerCPUPct, r.ServerCPUusPer))
		row("tool CPU", fmt.Sprintf("%.2f s (%.0f%% of one core)", r.ToolCPUs, r.ToolCPUPct))
	default:
		row("connections / rooms", fmt.Sprintf("%d / %d", r.Connected, r.Rooms))
		if r.Scenario != "echo" {
			row("messages × size", fmt.Sprintf("%d per sender × %d B, window %d, rate %s", r.Msgs, r.Size, r.Window, rateText(r.Rate)))
		}
		if r.Deflate {
			row("deflate negotiated", fmt.Sprintf("%d of %d connections; %d of %d frames compressed", r.Negotiated, r.Connected, r.CompressedFrames, r.Frames))
		}
		row("delivered / expected", fmt.Sprintf("%d / %d in %.2f s", r.Delivered, r.Expected, r.Seconds))
		row("lost / dup / out of order", fmt.Sprintf("%d / %d / %d", r.Lost, r.Duplicated, r.OutOfOrder))
		if r.Scenario == "echo" {
			row("round trips/s", fmt.Sprintf("%.0f", r.MsgsPerSec))
		} else {
			row("deliveries/s", fmt.Sprintf("%.0f (%.0f sends/s)", r.DeliveriesPerSec, r.MsgsPerSec))
		}
		row("latency p50 / p99 / max", fmt.Sprintf("%.0f / %.0f / %.0f µs", r.P50us, r.P99us, r.MaxUs))
		row("server CPU", fmt.Sprintf("%.2f s (%.0f%% of one core; %.2f µs per delivery)", r.ServerCPUs, r.ServerCPUPct, r.ServerCPUusPer))
		row("tool CPU", fmt.Sprintf("%.2f s (%.0f%% of one core)", r.ToolCPUs, r.ToolCPUPct))
		row("machine CPU", fmt.Sprintf("%.0f%% of %d00%% (other processes %.0f%%)", r.MachineCPUPct, runtime.NumCPU(), r.OtherCPUPct))
	}
	row("bottleneck", r.Bottleneck)
	for _, e := range r.Errors {
		row("ERROR", e)
	}
}

func rateText(r int) string {
	if r == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%d/s", r)
}
