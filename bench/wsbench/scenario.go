package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The payload of every message is JSON with fixed offsets, so receivers read
// the send time, sequence number and room without parsing:
//
//	{"t":"0000000000000000123","s":"0000000042","r":"000003","p":...}
//
// t is nanoseconds on this process's monotonic clock, s the sender's
// sequence number (syncBase and up: readiness probes), r the room index.
// p pads the message to its size: a string of letters, or for the deflate
// scenario an array of small objects, which compresses well.
const (
	offT, lenT   = 6, 19
	offS, lenS   = 32, 10
	offR, lenR   = 49, 6
	payloadFixed = 61
	minSize      = payloadFixed + 3
	syncBase     = 9_000_000_000
)

var epoch = time.Now()

// now is nanoseconds since the process started (monotonic).
func now() int64 { return int64(time.Since(epoch)) }

func makePayload(size int, compressible bool, room int) []byte {
	if size < minSize {
		size = minSize
	}
	b := make([]byte, 0, size)
	b = fmt.Appendf(b, `{"t":"%019d","s":"%010d","r":"%06d","p":`, 0, 0, room)
	if len(b) != payloadFixed {
		panic("payload layout")
	}
	if !compressible {
		b = append(b, '"')
		r := rand.New(rand.NewPCG(uint64(room), 7))
		for len(b) < size-2 {
			b = append(b, byte('a'+r.IntN(26)))
		}
		return append(b, '"', '}')
	}
	b = append(b, '[')
	for i := 0; ; i++ {
		item := fmt.Sprintf(`{"id":%d,"x":%d,"y":%d,"alive":true},`, i, i*7%100, i*13%100)
		if len(b)+len(item)+2 > size {
			break
		}
		b = append(b, item...)
	}
	if b[len(b)-1] == ',' {
		b = b[:len(b)-1]
	}
	for len(b) < size-2 {
		b = append(b, ' ')
	}
	return append(b, ']', '}')
}

func putDigits(dst []byte, v int64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

func digits(p []byte) (int64, bool) {
	var v int64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// roomState is one room of a run: its members, its sender's flow control
// (a window of messages not yet received by every member), readiness.
type roomState struct {
	idx     int
	name    string
	conns   []*wsConn
	members int32

	ready     atomic.Int32 // members that received a probe
	pending   []atomic.Int32
	fullyDone atomic.Int64 // every member has received every seq below this
	signal    chan struct{}
	finished  atomic.Int32 // members that received all M messages
}

func (r *roomState) complete(s int64) {
	for {
		cur := r.fullyDone.Load()
		if s+1 <= cur || r.fullyDone.CompareAndSwap(cur, s+1) {
			break
		}
	}
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// receiver is the per-connection receiving state of a run.
type receiver struct {
	run  *run
	room *roomState

	ready bool
	seen  []uint64
	next  int64
	got   int64
	dup   int64
	ooo   int64
	bad   int64
	hist  hist

	// echo: the reader answers its own message with the next one.
	echoBuf []byte
	echoSeq int64
}

func (rx *receiver) handle(c *wsConn, p []byte) {
	if len(p) < payloadFixed {
		rx.bad++
		return
	}
	s, ok1 := digits(p[offS : offS+lenS])
	t, ok2 := digits(p[offT : offT+lenT])
	if !ok1 || !ok2 {
		rx.bad++
		return
	}
	if s >= syncBase {
		if !rx.ready {
			rx.ready = true
			rx.room.ready.Add(1)
		}
		return
	}
	r := rx.run
	if s >= r.msgs {
		rx.bad++
		return
	}
	if rx.seen[s>>6]&(1<<(s&63)) != 0 {
		rx.dup++
		return
	}
	rx.seen[s>>6] |= 1 << (s & 63)
	at := now()
	rx.hist.add(at - t)
	rx.got++
	if s < rx.next {
		rx.ooo++
	} else {
		rx.next = s + 1
	}
	r.delivered.Add(1)
	if r.echo {
		if rx.got < r.msgs && at < r.deadline.Load() {
			rx.echoSeq = s + 1
			putDigits(rx.echoBuf[offT:offT+lenT], now())
			putDigits(rx.echoBuf[offS:offS+lenS], rx.echoSeq)
			if err := c.send(r.opcode, rx.echoBuf); err != nil {
				rx.bad++
			}
			return
		}
		rx.room.finished.Add(1)
		r.memberDone(at)
		return
	}
	if rx.room.pending[s%int64(r.window)].Add(-1) == 0 {
		rx.room.complete(s)
	}
	if rx.got == r.msgs {
		rx.room.finished.Add(1)
		r.memberDone(at)
	}
}

// run is one scenario run against one server.
type run struct {
	cfg    config
	msgs   int64
	window int
	echo   bool
	opcode byte

	rooms []*roomState
	conns []*wsConn
	rxs   []*receiver
	wg    sync.WaitGroup // readers

	delivered atomic.Int64
	membersIn atomic.Int64 // members finished
	lastAt    atomic.Int64 // when the last member finished
	deadline  atomic.Int64 // echo: stop sending after this
	allDone   chan struct{}
	doneOnce  sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	sent      atomic.Int64
}

func (r *run) memberDone(at int64) {
	for {
		cur := r.lastAt.Load()
		if at <= cur || r.lastAt.CompareAndSwap(cur, at) {
			break
		}
	}
	if r.membersIn.Add(1) == int64(len(r.rxs)) {
		r.doneOnce.Do(func() { close(r.allDone) })
	}
}

func (r *run) halt() { r.stopOnce.Do(func() { close(r.stop) }) }

// connectAll opens n connections, connection i to room i % len(rooms),
// with at most cfg.dialConcurrency handshakes at once. It stops at the first
// error that is not worth a retry and returns what it opened.
func connectAll(cfg config, n int, roomOf func(i int) string, bufSize int, deflate bool) ([]*wsConn, error) {
	conns := make([]*wsConn, n)
	var (
		next     atomic.Int64
		firstErr error
		errMu    sync.Mutex
		failed   atomic.Bool
		wg       sync.WaitGroup
	)
	srcs := sourceIPs(cfg.srcIPs)
	workers := max(1, min(cfg.dialConcurrency, n))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				o := dialOptions{addr: cfg.addr, path: cfg.path + "?room=" + roomOf(i), src: srcs[i%len(srcs)], deflate: deflate, bufSize: bufSize, timeout: 10 * time.Second}
				var c *wsConn
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					c, err = dial(o)
					if err == nil || isFatalDialErr(err) {
						break
					}
					time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					errMu.Unlock()
					failed.Store(true)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		opened := conns[:0]
		for _, c := range conns {
			if c != nil {
				opened = append(opened, c)
			}
		}
		return opened, firstErr
	}
	return conns, nil
}

func isFatalDialErr(err error) bool {
	// Out of descriptors or local ports: retrying will not help.
	msg := err.Error()
	return strings.Contains(msg, "too many open files") || strings.Contains(msg, "cannot assign requested address")
}

// sourceIPs returns n loopback source addresses 127.0.0.1, 127.0.0.2, ...
// (nil, one entry, for n <= 1: the kernel picks). Each address has its own
// ephemeral port range, so more than ~28k connections to one server port
// need several.
func sourceIPs(n int) []net.IP {
	if n <= 1 {
		return []net.IP{nil}
	}
	out := make([]net.IP, n)
	for i := range out {
		out[i] = net.IPv4(127, 0, byte((i+1)>>8), byte((i+1)&0xff))
	}
	return out
}

// measured is the CPU bookkeeping around a measured phase.
type measured struct {
	start     time.Time
	toolCPU0  time.Duration
	srvCPU0   time.Duration
	srvPID    int
	wall      time.Duration
	toolCPU   time.Duration
	serverCPU time.Duration
	busy0     int64
	total0    int64
	// machinePct is the whole machine's CPU use over the phase, in percent
	// of one core (0 to 100 × cores).
	machinePct float64
}

func beginMeasure(pid int) *measured {
	m := &measured{srvPID: pid, toolCPU0: selfCPU(), start: time.Now()}
	m.busy0, m.total0 = machineCPU()
	if pid > 0 {
		m.srvCPU0, _ = procCPU(pid)
	}
	return m
}

func (m *measured) end() {
	m.wall = time.Since(m.start)
	m.toolCPU = selfCPU() - m.toolCPU0
	if busy, total := machineCPU(); total > m.total0 {
		m.machinePct = 100 * float64(runtime.NumCPU()) * float64(busy-m.busy0) / float64(total-m.total0)
	}
	if m.srvPID > 0 {
		if c, err := procCPU(m.srvPID); err == nil {
			m.serverCPU = c - m.srvCPU0
		}
	}
}

// runMessages runs fanout, deflate or echo.
func runMessages(cfg config, srv *server) (*result, error) {
	res := newResult(cfg, srv)
	echo := cfg.scenario == "echo"
	deflate := cfg.scenario == "deflate"
	rooms := cfg.rooms
	conns := cfg.conns
	if echo {
		rooms = conns // a room of one per connection
	}
	if rooms < 1 || conns < rooms {
		return nil, fmt.Errorf("need 1 <= rooms <= conns (rooms %d, conns %d)", rooms, conns)
	}
	r := &run{cfg: cfg, msgs: int64(cfg.msgs), window: cfg.window, echo: echo, opcode: 0x1,
		allDone: make(chan struct{}), stop: make(chan struct{})}
	if echo {
		r.msgs = 1 << 40 // bounded by duration instead
		r.window = 1
	}
	tag := fmt.Sprintf("%s-%x", cfg.scenario, rand.Uint32())
	r.rooms = make([]*roomState, rooms)
	for i := range r.rooms {
		r.rooms[i] = &roomState{idx: i, name: fmt.Sprintf("%s-%d", tag, i), signal: make(chan struct{}, 1),
			pending: make([]atomic.Int32, max(r.window, 1))}
	}
	bufSize := min(max(cfg.size+64, 4096), 64<<10)
	cs, err := connectAll(cfg, conns, func(i int) string { return r.rooms[i%rooms].name }, bufSize, deflate)
	defer func() {
		for _, c := range cs {
			c.close()
		}
		r.wg.Wait()
	}()
	if err != nil {
		return nil, fmt.Errorf("connect: %w (opened %d of %d)", err, len(cs), conns)
	}
	r.conns = cs
	res.Connected = len(cs)
	for i, c := range cs {
		if c.deflate {
			res.Negotiated++
		}
		room := r.rooms[i%rooms]
		room.conns = append(room.conns, c)
		room.members++
		rx := &receiver{run: r, room: room}
		if !echo {
			rx.seen = make([]uint64, (r.msgs+63)/64)
		} else {
			rx.seen = make([]uint64, 1<<14) // up to 1M round trips per connection
			r.msgs = min(r.msgs, int64(len(rx.seen))*64)
			rx.echoBuf = makePayload(cfg.size, false, room.idx)
		}
		c.rx = rx
		r.rxs = append(r.rxs, rx)
	}
	if deflate && res.Negotiated != len(cs) {
		return nil, fmt.Errorf("deflate: negotiated on %d of %d connections", res.Negotiated, len(cs))
	}
	prefix := payloadFixed
	for _, c := range cs {
		r.wg.Add(1)
		go func(c *wsConn) { defer r.wg.Done(); c.readLoop(prefix, cfg.verify) }(c)
	}

	// Readiness: each room's sender probes until every member has seen a
	// probe, so every member is in the room before the first measured
	// message (servers join a connection after the 101, asynchronously).
	if err := r.probe(deflate); err != nil {
		return nil, err
	}

	runtime.GC()
	m := beginMeasure(res.pid)
	startNS := now()
	var senders sync.WaitGroup
	if echo {
		r.deadline.Store(startNS + int64(cfg.duration))
		for _, room := range r.rooms {
			c := room.conns[0]
			rx := c.rx
			putDigits(rx.echoBuf[offT:offT+lenT], now())
			putDigits(rx.echoBuf[offS:offS+lenS], 0)
			if err := c.send(r.opcode, rx.echoBuf); err != nil {
				return nil, err
			}
		}
	} else {
		for _, room := range r.rooms {
			senders.Add(1)
			go func(room *roomState) {
				defer senders.Done()
				r.sendAll(room, deflate, startNS)
			}(room)
		}
	}

	// Watchdog: done, stalled, or out of time.
	stalled, timedOut := false, false
	limit := time.NewTimer(cfg.timeout)
	defer limit.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := int64(-1), time.Now()
wait:
	for {
		select {
		case <-r.allDone:
			break wait
		case <-limit.C:
			timedOut = true
			break wait
		case <-tick.C:
			d := r.delivered.Load()
			if d != last {
				last, lastChange = d, time.Now()
			} else if time.Since(lastChange) > cfg.stall {
				stalled = true
				break wait
			}
		}
	}
	r.halt()
	m.end()
	// A sender blocked in a write (a server that stopped reading) returns
	// once close has set a write deadline.
	for _, c := range cs {
		c.close()
	}
	senders.Wait()
	endNS := r.lastAt.Load()
	if stalled || timedOut || endNS == 0 {
		endNS = now()
		if stalled {
			endNS -= int64(cfg.stall)
		}
	}
	elapsed := time.Duration(endNS - startNS)

	// The readers end with their sockets; wait for them before reading
	// their counters.
	r.wg.Wait()
	cs = nil

	var h hist
	var got, dup, ooo, bad int64
	closedByServer := 0
	for i, rx := range r.rxs {
		h.merge(&rx.hist)
		got += rx.got
		dup += rx.dup
		ooo += rx.ooo
		bad += rx.bad
		if r.conns[i].serverShut {
			closedByServer++
		}
		if deflate {
			res.CompressedFrames += r.conns[i].compressed
			res.Frames += r.conns[i].frames
		}
	}
	res.Sent = r.sent.Load()
	if echo {
		res.Expected = got // closed loop: every answered message
		res.Sent = got
	} else {
		for _, room := range r.rooms {
			res.Expected += int64(room.members) * r.msgs
		}
	}
	res.Delivered = got
	res.Lost = res.Expected - got
	res.Duplicated = dup
	res.OutOfOrder = ooo
	res.Malformed = bad
	res.ClosedByServer = closedByServer
	res.Stalled = stalled
	res.TimedOut = timedOut
	res.Seconds = elapsed.Seconds()
	if elapsed > 0 {
		res.DeliveriesPerSec = float64(got) / elapsed.Seconds()
		if echo {
			res.MsgsPerSec = res.DeliveriesPerSec
		} else {
			res.MsgsPerSec = float64(res.Sent) / elapsed.Seconds()
		}
	}
	res.P50us = h.quantile(0.50) / 1e3
	res.P99us = h.quantile(0.99) / 1e3
	res.MaxUs = float64(h.max) / 1e3
	res.setCPU(m)
	if deflate && res.CompressedFrames == 0 {
		res.Errors = append(res.Errors, "deflate negotiated but no compressed frame received")
	}
	res.check()
	return res, nil
}

// probe sends readiness probes in every room until all members saw one.
func (r *run) probe(deflate bool) error {
	deadline := time.Now().Add(r.cfg.timeout)
	var wg sync.WaitGroup
	errs := make(chan error, len(r.rooms))
	// Probes of many rooms go out from a few goroutines, not one per room.
	workers := min(len(r.rooms), 8)
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.rooms) {
					return
				}
				room := r.rooms[i]
				buf := makePayload(min(r.cfg.size, 256), deflate, room.idx)
				for k := int64(0); room.ready.Load() < room.members; k++ {
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("room %s: only %d of %d members ready", room.name, room.ready.Load(), room.members)
						return
					}
					putDigits(buf[offS:offS+lenS], syncBase+k)
					if err := room.conns[0].send(r.opcode, buf); err != nil {
						errs <- fmt.Errorf("probe: %w", err)
						return
					}
					for w := 0; w < 20 && room.ready.Load() < room.members; w++ {
						time.Sleep(time.Millisecond)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	// Probes still in flight are ignored by receivers; give them a moment
	// so they do not mix with the first measured messages.
	time.Sleep(100 * time.Millisecond)
	return nil
}

// sendAll is a room's sender: M messages, at most window of them not yet
// received by every member, paced at cfg.rate per second if set.
func (r *run) sendAll(room *roomState, compressible bool, startNS int64) {
	buf := makePayload(r.cfg.size, compressible, room.idx)
	c := room.conns[0]
	w := int64(r.window)
	var interval int64
	if r.cfg.rate > 0 {
		interval = int64(time.Second) / int64(r.cfg.rate)
	}
	for k := int64(0); k < r.msgs; k++ {
		for k-room.fullyDone.Load() >= w {
			select {
			case <-room.signal:
			case <-r.stop:
				return
			}
		}
		if interval > 0 {
			due := startNS + k*interval
			if d := due - now(); d > 0 {
				select {
				case <-time.After(time.Duration(d)):
				case <-r.stop:
					return
				}
			}
		}
		room.pending[k%w].Store(room.members)
		putDigits(buf[offT:offT+lenT], now())
		putDigits(buf[offS:offS+lenS], k)
		if err := c.send(r.opcode, buf); err != nil {
			return
		}
		r.sent.Add(1)
	}
}
