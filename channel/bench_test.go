package channel_test

// Benchmarks of issue 13, item 8 (published in docs/performance.md,
// section "Channels").
//
// The clients run in a separate process: this test binary started again
// with benchClientEnv set, whose init runs benchClientMain instead of the
// tests. So the getrusage of this process (RUSAGE_SELF; a child's CPU is
// not in it) is the server's CPU plus the benchmark's driver (which only
// posts broadcasts and waits for progress lines), and the client side's CPU
// (reading frames, dialling, checking join replies) is measured on its own
// by the client process and reported as client-CPU-*.
//
// The client process reads commands on stdin, one a line, and answers on
// stdout, one line each; while counting frames it also prints "p TOTAL"
// every time its clients have read another multiple of the members count
// (a broadcast's worth) of data frames:
//
//	dial URL N TOPIC   open N connections (gorilla handshake, then raw frame
//	                   counting on the socket); TOPIC "-" joins nothing (room
//	                   members are joined by the server), else each joins
//	                   TOPIC and waits for its ok reply. Answer: "ready".
//	wave URL N TOPIC EPOCH OFFSET MISSED
//	                   open N connections at once, each joining TOPIC with
//	                   recover {EPOCH, OFFSET} (EPOCH "-": a plain join) and
//	                   reading its reply; with a recover every reply must say
//	                   recovered=true and hold MISSED events. Connections
//	                   stay open. Answer: "waved EPOCH OFFSET BYTES" (the
//	                   position in the replies, the size of one reply).
//	drop               close every connection (TCP close, no closing
//	                   handshake) and wait for the readers. Answer: "dropped".
//	cpu                Answer: "cpu NS", the process's user+sys CPU so far.
//
// An error ends the process after an "err ..." line.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/internal/wstest"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

const benchClientEnv = "WSACTOR_CHANNEL_BENCH_CLIENT"

func init() {
	if os.Getenv(benchClientEnv) == "1" {
		benchClientMain()
		os.Exit(0)
	}
}

// benchData is the ~100-byte data of every published event.
var benchData = json.RawMessage(`{"text":"` + strings.Repeat("x", 100-len(`{"text":""}`)) + `"}`)

// benchRoomPayload is what the room broadcasts: the bytes of a channel
// event frame carrying benchData (the offset has the digits of a typical
// run's), so both sides put the same number of bytes on the wire.
var benchRoomPayload = []byte(`{"t":"event","topic":"bench","event":"msg","data":` + string(benchData) + `,"offset":12345}`)

// benchWindow is how many broadcasts may be in flight (posted, not yet
// read by every client), as in room's BenchmarkBroadcast.
const benchWindow = 256

// BenchmarkChannelVsRoomBroadcast compares a channel topic's publish with a
// raw room broadcast to the same N members over loopback TCP. One op is one
// broadcast of one ~100-byte message; the timer stops when every client has
// read every message (counted as data frames in the client process).
//
//	room         a room.Registry room; room.Room.Broadcast of benchRoomPayload
//	             (the same bytes as the channel's event frame).
//	channel      a channel.Hub topic; a message to the topic's behaviour,
//	             which calls Topic.Publish (history, offset, JSON envelope):
//	             posted without waiting, like the room's broadcast.
//	channel-hub  the same topic; Hub.Publish from 16 goroutines (each call
//	             waits for the topic's answer).
//	interleaved  all three on one client process, in turns of benchChunk(N)
//	             broadcasts (room, channel, channel-hub; then channel,
//	             channel-hub, room; and so on, rotating who goes first), each
//	             turn drained before the next and its CPU counted to its
//	             kind, so what the machine's load does in the meantime
//	             falls on all three alike. One op is one broadcast of each
//	             kind (3 broadcasts); the ratios are this case's.
//
// Broadcasts in flight are capped at benchWindow in every case. Neither
// side negotiates compression; heartbeats are off.
//
// Extra metrics:
//
//	deliveries/s              messages read by all clients per second
//	ns/delivery               wall time per delivery
//	server-CPU-ns/delivery    user+sys CPU of this process (the server and the
//	                          driver, not the clients) per delivery
//	client-CPU-ns/delivery    user+sys CPU of the client process per delivery
//	(interleaved) room-, channel- and hub-CPU-ns/delivery and -ns/delivery;
//	the ratios channel/room-CPU and hub/room-CPU (of the sums), and the
//	medians of the same ratios taken turn by turn (-median-turn), which a
//	burst of load from other processes moves less; turns.
func BenchmarkChannelVsRoomBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, kind := range []string{"room", "channel", "channel-hub"} {
			var fx *benchFanout
			b.Run(fmt.Sprintf("members=%d/%s", n, kind), func(b *testing.B) {
				if fx == nil {
					fx = benchNewFanout(b, kind, n, nil)
				}
				fx.run(b)
			})
			if fx != nil {
				fx.close(b)
			}
		}
		var rm, ch *benchFanout
		b.Run(fmt.Sprintf("members=%d/interleaved", n), func(b *testing.B) {
			if rm == nil {
				proc := benchStartClients(b)
				rm = benchNewFanout(b, "room", n, proc)
				ch = benchNewFanout(b, "channel", n, proc)
			}
			benchInterleaved(b, rm, ch)
		})
		if rm != nil {
			rm.close(b)
			ch.close(b)
			rm.proc.call(b, "dropped", "drop")
			rm.proc.stop(b)
		}
	}
}

// benchChunk is the number of broadcasts of one turn of the interleaved
// case: about 50,000 deliveries.
func benchChunk(n int) int64 { return max(32, 50000/int64(n)) }

func benchInterleaved(b *testing.B, rm, ch *benchFanout) {
	n := float64(rm.n)
	chunk := benchChunk(rm.n)
	var cpu, wall [3]time.Duration
	var ratios [2][]float64 // per turn: channel/room, hub/room CPU
	ccpu0 := rm.proc.cpu(b)
	b.ResetTimer()
	kinds := []string{"room", "channel", "channel-hub"}
	for turn, done := 0, int64(0); done < int64(b.N); turn, done = turn+1, done+chunk {
		k := min(chunk, int64(b.N)-done)
		var spent [3]time.Duration
		for j := range kinds {
			i := (turn + j) % len(kinds) // who goes first rotates
			kind := kinds[i]
			fx := rm
			if i > 0 {
				fx = ch
			}
			c0, t0 := benchCPU(), time.Now()
			fx.chunk(b, kind, k)
			wall[i] += time.Since(t0)
			spent[i] = benchCPU() - c0
			cpu[i] += spent[i]
		}
		if spent[0] > 0 {
			ratios[0] = append(ratios[0], float64(spent[1])/float64(spent[0]))
			ratios[1] = append(ratios[1], float64(spent[2])/float64(spent[0]))
		}
	}
	b.StopTimer()
	ccpu := rm.proc.cpu(b) - ccpu0
	deliveries := float64(b.N) * n
	for i, name := range []string{"room", "channel", "hub"} {
		b.ReportMetric(float64(cpu[i])/deliveries, name+"-CPU-ns/delivery")
		b.ReportMetric(float64(wall[i])/deliveries, name+"-ns/delivery")
	}
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "channel/room-CPU")
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "hub/room-CPU")
	b.ReportMetric(benchMedian(ratios[0]), "channel/room-CPU-median-turn")
	b.ReportMetric(benchMedian(ratios[1]), "hub/room-CPU-median-turn")
	b.ReportMetric(float64(len(ratios[0])), "turns")
	b.ReportMetric(float64(ccpu)/(3*deliveries), "client-CPU-ns/delivery")
}

type benchFanout struct {
	kind   string
	n      int
	proc   *benchProc
	shared bool // proc is not this fixture's own
	srv    *httptest.Server
	system *actor.ActorSystem

	// room
	tree *supervisor.Tree
	h    *actors.Handler
	room *room.Room

	// channel
	hub   *channel.Hub
	topic *room.Room // the topic's room, for posting to its behaviour
}

// benchPublish asks the benchmark topic's behaviour to publish one event.
type benchPublish struct{}

// benchTopic is the benchmark topic's behaviour.
type benchTopic struct {
	t    *channel.Topic
	self *atomic.Pointer[room.Room]
}

func (a *benchTopic) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *channel.Joined:
		if a.self.Load() == nil {
			a.self.Store(a.t.Room().Room())
		}
	case *benchPublish:
		if _, err := a.t.Publish("msg", benchData); err != nil {
			panic(err)
		}
	}
}

func benchNewFanout(b *testing.B, kind string, n int, proc *benchProc) *benchFanout {
	b.Helper()
	fx := &benchFanout{kind: kind, n: n, system: actors.NewSystem(zerolog.Nop()), proc: proc, shared: proc != nil}
	if proc == nil {
		fx.proc = benchStartClients(b)
	}
	accept := transport.AcceptOptions{
		// At most benchWindow broadcasts are in flight; the queue only has
		// to hold those.
		QueueMessages: 4096,
		QueueBytes:    64 << 20,
	}
	noHeartbeat := supervisor.HeartbeatOptions{Interval: -1}
	topicName := "-"
	if kind == "room" {
		tree, err := supervisor.New(fx.system)
		if err != nil {
			b.Fatal(err)
		}
		fx.tree = tree
		opened := make(chan *actors.Conn, n)
		fx.h, err = actors.NewHandler(fx.system, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if m, ok := ctx.Message().(*actors.Opened); ok {
					opened <- m.Conn
				}
			})
		}, &actors.HandlerOptions{Tree: tree, AcceptOptions: accept, Heartbeat: noHeartbeat})
		if err != nil {
			b.Fatal(err)
		}
		fx.srv = httptest.NewServer(fx.h)
		fx.proc.call(b, "ready", "dial", benchWSURL(fx.srv), n, topicName)
		reg := room.NewRegistry(tree, &room.RegistryOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for range n {
			r, _, err := reg.Join(ctx, "bench", &room.Join{Conn: <-opened})
			if err != nil {
				b.Fatal(err)
			}
			fx.room = r
		}
		return fx
	}
	var self atomic.Pointer[room.Room]
	hub, err := channel.NewHub(fx.system, &channel.Options{
		AcceptOptions: accept,
		Logger:        zerolog.Nop(),
		Heartbeat:     noHeartbeat,
		Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{
				ClientPublish: true, // (not used: there is a Handler, and no client pushes)
				History:       100,
				IdleTimeout:   -1,
				Handler: func(t *channel.Topic) actor.Actor {
					return &benchTopic{t: t, self: &self}
				},
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	fx.hub = hub
	fx.srv = httptest.NewServer(hub)
	topicName = "bench"
	fx.proc.call(b, "ready", "dial", benchWSURL(fx.srv), n, topicName)
	if got := hub.Len(); got != n {
		b.Fatalf("%d connections, want %d", got, n)
	}
	fx.topic = self.Load()
	if fx.topic == nil {
		b.Fatal("the topic's behaviour saw no join")
	}
	return fx
}

func benchMedian(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (fx *benchFanout) run(b *testing.B) {
	cpu0 := benchCPU()
	ccpu0 := fx.proc.cpu(b)
	b.ResetTimer()
	start := time.Now()
	fx.chunk(b, fx.kind, int64(b.N))
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := benchCPU() - cpu0
	ccpu := fx.proc.cpu(b) - ccpu0
	deliveries := float64(b.N) * float64(fx.n)
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu)/deliveries, "server-CPU-ns/delivery")
	b.ReportMetric(float64(ccpu)/deliveries, "client-CPU-ns/delivery")
}

// chunk makes k broadcasts of kind ("room" on a room fixture, "channel" or
// "channel-hub" on a channel one), at most benchWindow in flight, and waits
// until every client has read all of them. It starts from a quiescent
// client process (every earlier broadcast read).
func (fx *benchFanout) chunk(b *testing.B, kind string, k int64) {
	n := int64(fx.n)
	base := fx.proc.frames()
	switch kind {
	case "room":
		for i := range k {
			if i >= benchWindow {
				fx.proc.waitFrames(b, base+(i-benchWindow+1)*n)
			}
			fx.room.Broadcast(transport.MessageText, benchRoomPayload)
		}
	case "channel":
		msg := &benchPublish{}
		for i := range k {
			if i >= benchWindow {
				fx.proc.waitFrames(b, base+(i-benchWindow+1)*n)
			}
			fx.topic.Tell(msg)
		}
	case "channel-hub":
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				ctx := context.Background()
				for {
					i := next.Add(1) - 1
					if i >= k {
						return
					}
					if i >= benchWindow {
						fx.proc.waitFrames(b, base+(i-benchWindow+1)*n)
					}
					if _, err := fx.hub.Publish(ctx, "bench", "msg", benchData); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	fx.proc.waitFrames(b, base+k*n)
}

func (fx *benchFanout) close(b *testing.B) {
	if !fx.shared {
		fx.proc.call(b, "dropped", "drop")
		fx.proc.stop(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if fx.hub != nil {
		if err := fx.hub.Close(ctx); err != nil {
			b.Error(err)
		}
	} else {
		if err := fx.h.Shutdown(ctx); err != nil {
			b.Error(err)
		}
		if err := fx.tree.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	}
	fx.srv.Close()
}

// BenchmarkRecovery measures a reconnect wave: 1,000 clients in a topic
// with History 1,000 disconnect, 1,000 events are published, and all 1,000
// reconnect at once and join again. One op is one wave, timed from the
// first dial to the last join reply read. Disconnecting and publishing are
// outside the timer and the CPU figures.
//
//	recover     every join carries recover (the position of the client's
//	            last join reply); every reply is checked: recovered=true,
//	            1,000 events, the expected latest offset (one reply per wave
//	            is decoded in full and its events checked one by one).
//	plain-join  the same wave with joins without recover or history: what
//	            the reconnect costs without recovery (handshake, session,
//	            join), for comparison.
//
// Extra metrics:
//
//	wave-ms              wall time of one wave
//	server-CPU-ms/wave   user+sys CPU of this process (the Hub) per wave
//	client-CPU-ms/wave   user+sys CPU of the client process per wave
//	reply-KB             size of one join reply
func BenchmarkRecovery(b *testing.B) {
	b.Run("recover", func(b *testing.B) { benchRecovery(b, true) })
	b.Run("plain-join", func(b *testing.B) { benchRecovery(b, false) })
}

func benchRecovery(b *testing.B, recover bool) {
	const clients, missed = 1000, 1000
	system := actors.NewSystem(zerolog.Nop())
	hub, err := channel.NewHub(system, &channel.Options{
		Logger:    zerolog.Nop(),
		Heartbeat: supervisor.HeartbeatOptions{Interval: -1},
		Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{History: missed, IdleTimeout: -1}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	proc := benchStartClients(b)
	url := benchWSURL(srv)
	defer func() {
		proc.stop(b)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			b.Error(err)
		}
		srv.Close()
	}()
	parse := func(line string) (channel.Position, int) {
		f := strings.Fields(line)
		off, _ := strconv.ParseUint(f[2], 10, 64)
		size, _ := strconv.Atoi(f[3])
		return channel.Position{Epoch: f[1], Offset: off}, size
	}
	pos, _ := parse(proc.call(b, "waved", "wave", url, clients, "news", "-", 0, 0))
	ctx := context.Background()
	var wall, cpu, ccpu time.Duration
	size := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		proc.call(b, "dropped", "drop")
		for deadline := time.Now().Add(time.Minute); hub.Len() > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("%d connections still open a minute after the clients closed", hub.Len())
			}
		}
		for i := range missed {
			if _, err := hub.Publish(ctx, "news", "msg", benchData); err != nil {
				b.Fatalf("publish %d: %v", i, err)
			}
		}
		epoch := pos.Epoch
		if !recover {
			epoch = "-"
		}
		cpu0, ccpu0 := benchCPU(), proc.cpu(b)
		b.StartTimer()
		start := time.Now()
		line := proc.call(b, "waved", "wave", url, clients, "news", epoch, pos.Offset, missed)
		wall += time.Since(start)
		b.StopTimer()
		cpu += benchCPU() - cpu0
		ccpu += proc.cpu(b) - ccpu0
		got, n := parse(line)
		if got.Epoch != pos.Epoch || got.Offset != pos.Offset+missed {
			b.Fatalf("rejoined at %+v, want %s/%d", got, pos.Epoch, pos.Offset+missed)
		}
		pos, size = got, n
	}
	proc.call(b, "dropped", "drop")
	ops := float64(b.N)
	b.ReportMetric(float64(wall.Milliseconds())/ops, "wave-ms")
	b.ReportMetric(float64(cpu.Milliseconds())/ops, "server-CPU-ms/wave")
	b.ReportMetric(float64(ccpu.Milliseconds())/ops, "client-CPU-ms/wave")
	b.ReportMetric(float64(size)/1024, "reply-KB")
}

func benchWSURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

// benchCPU returns this process's user+sys CPU time so far.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchProc is the client process, seen from the benchmark.
type benchProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string
	done    chan struct{} // closed when its stdout ends

	mu    sync.Mutex
	cond  *sync.Cond
	total int64 // from its "p" lines
}

func benchStartClients(b *testing.B) *benchProc {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), benchClientEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &benchProc{cmd: cmd, stdin: stdin, replies: make(chan string, 16), done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		defer close(p.done)
		defer p.cond.Broadcast()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if t, ok := strings.CutPrefix(line, "p "); ok {
				v, _ := strconv.ParseInt(t, 10, 64)
				p.mu.Lock()
				if v > p.total {
					p.total = v
				}
				p.mu.Unlock()
				p.cond.Broadcast()
				continue
			}
			p.replies <- line
		}
	}()
	return p
}

// call sends a command and returns its answer, which must start with want.
func (p *benchProc) call(b *testing.B, want string, args ...any) string {
	b.Helper()
	if _, err := fmt.Fprintln(p.stdin, args...); err != nil {
		b.Fatalf("client process: %v", err)
	}
	select {
	case line := <-p.replies:
		if !strings.HasPrefix(line, want) {
			b.Fatalf("client process answered %q to %v", line, args)
		}
		return line
	case <-p.done:
		b.Fatalf("client process ended (command %v)", args)
	case <-time.After(2 * time.Minute):
		b.Fatalf("client process: no answer to %v in 2 minutes", args)
	}
	return ""
}

func (p *benchProc) cpu(b *testing.B) time.Duration {
	ns, _ := strconv.ParseInt(strings.TrimPrefix(p.call(b, "cpu ", "cpu"), "cpu "), 10, 64)
	return time.Duration(ns)
}

func (p *benchProc) frames() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// waitFrames waits until the clients have read x data frames in all. It
// may be called from several goroutines.
func (p *benchProc) waitFrames(b *testing.B, x int64) {
	deadline := time.Now().Add(2 * time.Minute)
	wake := time.AfterFunc(2*time.Minute, p.cond.Broadcast)
	defer wake.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.total < x {
		select {
		case <-p.done:
			b.Errorf("client process ended at %d frames, waiting for %d", p.total, x)
			panic("client process ended")
		default:
		}
		if time.Now().After(deadline) {
			b.Errorf("clients at %d frames, waiting for %d for 2 minutes", p.total, x)
			panic("clients stalled")
		}
		p.cond.Wait()
	}
}

func (p *benchProc) stop(b *testing.B) {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		b.Error("client process did not end")
	}
	if err := p.cmd.Wait(); err != nil {
		b.Errorf("client process: %v", err)
	}
}

// The client process.

type benchClients struct {
	out     *bufio.Writer
	outMu   sync.Mutex
	conns   []net.Conn
	readers sync.WaitGroup
	total   atomic.Int64
	every   int64 // print progress every this many frames
}

func (c *benchClients) printf(format string, args ...any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintf(c.out, format+"\n", args...)
	c.out.Flush()
}

func (c *benchClients) fail(err error) {
	c.printf("err %v", err)
	os.Exit(1)
}

func benchClientMain() {
	c := &benchClients{out: bufio.NewWriter(os.Stdout)}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "dial":
			n, _ := strconv.Atoi(f[2])
			c.dial(f[1], n, f[3])
			c.printf("ready")
		case "wave":
			n, _ := strconv.Atoi(f[2])
			off, _ := strconv.ParseUint(f[5], 10, 64)
			missed, _ := strconv.Atoi(f[6])
			c.wave(f[1], n, f[3], f[4], off, missed)
		case "drop":
			c.drop()
			c.printf("dropped")
		case "cpu":
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			c.printf("cpu %d", ru.Utime.Nano()+ru.Stime.Nano())
		default:
			c.fail(fmt.Errorf("unknown command %q", f[0]))
		}
	}
	c.drop()
}

func benchDial(url string, protocol bool) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: time.Minute}
	if protocol {
		d.Subprotocols = []string{channel.Subprotocol}
	}
	c, _, err := d.Dial(url, nil)
	return c, err
}

// dial opens n counting clients, joined to topic unless it is "-".
func (c *benchClients) dial(url string, n int, topic string) {
	c.every = int64(n)
	for range n {
		ws, err := benchDial(url, topic != "-")
		if err != nil {
			c.fail(err)
		}
		if topic != "-" {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"t":"join","ref":1,"topic":"`+topic+`"}`)); err != nil {
				c.fail(err)
			}
			_, p, err := ws.ReadMessage()
			if err != nil {
				c.fail(err)
			}
			if !bytes.HasPrefix(p, []byte(`{"t":"reply","ref":1,`)) || !bytes.Contains(p, []byte(`"status":"ok"`)) {
				c.fail(fmt.Errorf("join reply %s", p))
			}
		}
		// The server sends nothing more before the first broadcast, which
		// waits for "ready": gorilla has buffered nothing past the reply.
		conn := ws.NetConn()
		c.conns = append(c.conns, conn)
		c.readers.Add(1)
		go c.count(bufio.NewReaderSize(conn, 4096))
	}
}

// count counts the data frames read from br until the connection ends.
func (c *benchClients) count(br *bufio.Reader) {
	defer c.readers.Done()
	wstest.ReadDataFrames(br, func() {
		if t := c.total.Add(1); t%c.every == 0 {
			c.printf("p %d", t)
		}
	})
}

// wave opens n clients at once, each joining topic with recover, and checks
// their replies.
func (c *benchClients) wave(url string, n int, topic, epoch string, offset uint64, missed int) {
	type result struct {
		conn net.Conn
		pos  channel.Position
		size int
		err  error
	}
	join := map[string]any{"t": "join", "ref": 1, "topic": topic}
	if epoch != "-" {
		join["recover"] = channel.Position{Epoch: epoch, Offset: offset}
	}
	req, _ := json.Marshal(join)
	results := make(chan result, n)
	for i := range n {
		go func() {
			ws, err := benchDial(url, true)
			if err != nil {
				results <- result{err: err}
				return
			}
			r := result{conn: ws.NetConn()}
			r.pos, r.size, r.err = benchRejoin(ws, req, epoch != "-", offset, missed, i == 0)
			results <- r
		}()
	}
	var pos channel.Position
	size := 0
	var firstErr error
	for i := range n {
		r := <-results
		if r.conn != nil {
			c.conns = append(c.conns, r.conn)
		}
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		if r.err == nil {
			if i > 0 && r.pos != pos && firstErr == nil {
				firstErr = fmt.Errorf("join replies at %+v and %+v", pos, r.pos)
			}
			pos, size = r.pos, r.size
		}
	}
	if firstErr != nil {
		c.fail(firstErr)
	}
	c.printf("waved %s %d %d", pos.Epoch, pos.Offset, size)
}

// benchRejoin sends a join and checks its reply. Every reply is checked
// cheaply (status, recovered, the number of events, the latest offset);
// with full, it is decoded and every event's offset checked.
func benchRejoin(ws *websocket.Conn, req []byte, recover bool, from uint64, missed int, full bool) (channel.Position, int, error) {
	if err := ws.WriteMessage(websocket.TextMessage, req); err != nil {
		return channel.Position{}, 0, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
	_, p, err := ws.ReadMessage()
	if err != nil {
		return channel.Position{}, 0, err
	}
	// {"t":"reply","ref":1,"topic":"news","status":"ok","data":{"epoch":"...","offset":N,"recovered":true,"history":[...]}}
	head := p[:min(len(p), 200)]
	if !bytes.HasPrefix(p, []byte(`{"t":"reply","ref":1,`)) || !bytes.Contains(head, []byte(`"status":"ok"`)) {
		return channel.Position{}, 0, fmt.Errorf("join reply %.200s", p)
	}
	var pos channel.Position
	i := bytes.Index(head, []byte(`"data":{"epoch":"`))
	if i < 0 {
		return pos, 0, fmt.Errorf("join reply %.200s", p)
	}
	rest := p[i+len(`"data":{"epoch":"`):]
	j := bytes.IndexByte(rest, '"')
	pos.Epoch = string(rest[:j])
	rest = rest[j:]
	if !bytes.HasPrefix(rest, []byte(`","offset":`)) {
		return pos, 0, fmt.Errorf("join reply %.200s", p)
	}
	rest = rest[len(`","offset":`):]
	j = bytes.IndexByte(rest, ',')
	pos.Offset, err = strconv.ParseUint(string(rest[:j]), 10, 64)
	if err != nil {
		return pos, 0, fmt.Errorf("join reply %.200s", p)
	}
	if !recover {
		return pos, len(p), nil
	}
	if !bytes.HasPrefix(rest[j:], []byte(`,"recovered":true,`)) {
		return pos, 0, fmt.Errorf("not recovered: %.200s", p)
	}
	if got := bytes.Count(p, []byte(`{"event":"`)); got != missed || pos.Offset != from+uint64(missed) {
		return pos, 0, fmt.Errorf("recovered %d events up to %d, want %d up to %d", got, pos.Offset, missed, from+uint64(missed))
	}
	if full {
		var m struct {
			Data channel.JoinReply `json:"data"`
		}
		if err := json.Unmarshal(p, &m); err != nil {
			return pos, 0, err
		}
		if !m.Data.Recovered || len(m.Data.History) != missed {
			return pos, 0, fmt.Errorf("decoded reply: recovered %v, %d events", m.Data.Recovered, len(m.Data.History))
		}
		for k, h := range m.Data.History {
			if h.Offset != from+1+uint64(k) || !bytes.Equal(h.Data, benchData) {
				return pos, 0, fmt.Errorf("recovered event %d: offset %d, data %s", k, h.Offset, h.Data)
			}
		}
	}
	return pos, len(p), nil
}

// drop closes every client connection and waits for the counting readers.
func (c *benchClients) drop() {
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
	c.readers.Wait()
}
