package supervisor

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakePeer answers pings (or not) on the synctest clock. While its reader is
// held (held), a pong is not read, so LastSeen stands still; the kernel still
// receives it, and LastHeard reports that if the peer has a kernel that
// tells (kernel), as on Linux.
type fakePeer struct {
	mu                sync.Mutex
	seen, heard, ping time.Time
	answers           bool
	held, kernel      bool
	pings             int
	heardCalls        int
	killedAt          time.Time
	cause             error
	kills             int
}

func newFakePeer(answers bool) *fakePeer {
	now := time.Now()
	return &fakePeer{seen: now, heard: now, answers: answers}
}

func (p *fakePeer) LastSeen() time.Time { p.mu.Lock(); defer p.mu.Unlock(); return p.seen }
func (p *fakePeer) LastPing() time.Time { p.mu.Lock(); defer p.mu.Unlock(); return p.ping }

func (p *fakePeer) LastHeard() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heardCalls++
	if p.kernel && p.heard.After(p.seen) {
		return p.heard
	}
	return p.seen
}

func (p *fakePeer) Ping([]byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pings++
	p.ping = time.Now()
	if p.answers {
		p.heard = time.Now() // the pong reaches the socket
		if !p.held {
			p.seen = p.heard // and is read
		}
	}
	return nil
}

func (p *fakePeer) Terminate(cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kills == 0 {
		p.cause = cause
		p.killedAt = time.Now()
	}
	p.kills++
}

func TestHeartbeatKillsSilentPeerOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := HeartbeatOptions{Interval: 30 * time.Second, Timeout: 10 * time.Second}
		hb := NewHeartbeat(opts)
		start := time.Now()
		silent, alive := newFakePeer(false), newFakePeer(true)
		hb.Add(silent)
		hb.Add(alive)
		defer hb.Remove(alive)
		defer hb.Remove(silent)

		time.Sleep(5 * time.Minute)
		synctest.Wait()

		silent.mu.Lock()
		killedAfter, kills, cause, pings := silent.killedAt.Sub(start), silent.kills, silent.cause, silent.pings
		silent.mu.Unlock()
		if kills == 0 || !errors.Is(cause, ErrHeartbeatTimeout) {
			t.Fatalf("silent peer not terminated with ErrHeartbeatTimeout: kills %d cause %v", kills, cause)
		}
		if pings == 0 {
			t.Fatal("silent peer was never pinged before being killed")
		}
		lo, hi := opts.Interval+opts.Timeout, opts.Interval+opts.Timeout+hb.tick
		if killedAfter < lo || killedAfter > hi {
			t.Fatalf("killed after %v, want within [%v, %v]", killedAfter, lo, hi)
		}
		alive.mu.Lock()
		if alive.kills != 0 || alive.pings < 5 {
			t.Fatalf("answering peer: %d kills, %d pings over 5 minutes", alive.kills, alive.pings)
		}
		alive.mu.Unlock()
	})
}

// TestHeartbeatHeldReader pins the rule for a connection whose reader a
// handler holds for the whole run, so no frame is read after the start: the
// kernel's word decides, and where there is none, the frames read do.
func TestHeartbeatHeldReader(t *testing.T) {
	tests := []struct {
		name     string
		answers  bool // the peer answers pings
		kernel   bool // LastHeard reports data that reached the socket unread
		wantKill bool
	}{
		{"live peer, kernel tells", true, true, false},
		{"dead peer, kernel tells", false, true, true},
		{"live peer, no kernel word", true, false, true},
		{"dead peer, no kernel word", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := HeartbeatOptions{Interval: 30 * time.Second, Timeout: 10 * time.Second}
				hb := NewHeartbeat(opts)
				start := time.Now()
				p := newFakePeer(tt.answers)
				p.held, p.kernel = true, tt.kernel
				hb.Add(p)
				defer hb.Remove(p)

				time.Sleep(5 * time.Minute)
				synctest.Wait()

				p.mu.Lock()
				defer p.mu.Unlock()
				if !tt.wantKill {
					if p.kills != 0 || p.pings < 5 {
						t.Fatalf("%d kills, %d pings over 5 minutes; want 0 kills, a ping every Interval", p.kills, p.pings)
					}
					return
				}
				if p.kills == 0 || !errors.Is(p.cause, ErrHeartbeatTimeout) {
					t.Fatalf("not terminated with ErrHeartbeatTimeout: kills %d cause %v", p.kills, p.cause)
				}
				lo, hi := opts.Interval+opts.Timeout, opts.Interval+opts.Timeout+hb.tick
				if d := p.killedAt.Sub(start); d < lo || d > hi {
					t.Fatalf("killed after %v, want within [%v, %v] of the last frame", d, lo, hi)
				}
			})
		})
	}
}

// TestHeartbeatAsksLastHeardOnlyWhenStale: LastHeard may cost a system
// call, so a connection read from within Interval is never asked.
func TestHeartbeatAsksLastHeardOnlyWhenStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hb := NewHeartbeat(HeartbeatOptions{Interval: 30 * time.Second})
		p := newFakePeer(true)
		hb.Add(p)
		defer hb.Remove(p)
		for range 10 { // a frame every 10s: never idle for Interval
			time.Sleep(10 * time.Second)
			p.mu.Lock()
			p.seen = time.Now()
			p.mu.Unlock()
		}
		synctest.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.heardCalls != 0 || p.pings != 0 {
			t.Fatalf("busy connection: LastHeard asked %d times, %d pings; want 0, 0", p.heardCalls, p.pings)
		}
	})
}

func TestHeartbeatDisabled(t *testing.T) {
	hb := NewHeartbeat(HeartbeatOptions{Interval: -1})
	hb.Add(newFakePeer(false))
	if hb.Enabled() || hb.Len() != 0 {
		t.Fatal("a disabled heartbeat watches connections")
	}
}

func TestCounterBudget(t *testing.T) {
	c := NewCounter(Budget{Max: 2, Within: time.Minute})
	t0 := time.Unix(1000, 0)
	if !c.Fail(t0) || !c.Fail(t0.Add(time.Second)) {
		t.Fatal("failures within budget refused")
	}
	if c.Fail(t0.Add(2 * time.Second)) {
		t.Fatal("third failure within the window allowed")
	}
	if !c.Fail(t0.Add(5 * time.Minute)) {
		t.Fatal("old failures not forgotten")
	}
}

func TestBackoffIsExponentialCappedJittered(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	one := func() float64 { return 1 }
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for n, w := range want {
		if got := b.delay(n, one); got != w*time.Millisecond {
			t.Fatalf("ceiling of attempt %d = %v, want %v", n, got, w*time.Millisecond)
		}
	}
	if got := b.delay(100, one); got != 2*time.Second {
		t.Fatalf("huge attempt = %v, want the cap", got)
	}
	half := func() float64 { return 0.5 }
	if got := b.delay(3, half); got != 400*time.Millisecond {
		t.Fatalf("jitter not applied: %v", got)
	}
	for n := range 20 {
		if d := b.Delay(n); d < 0 || d > 2*time.Second {
			t.Fatalf("Delay(%d) = %v out of [0, cap]", n, d)
		}
	}
}

// BenchmarkHeartbeatSweep measures one sweep over 10,000 connections, none
// of which needs a ping: the steady-state cost of the heartbeat per tick.
func BenchmarkHeartbeatSweep(b *testing.B) {
	hb := NewHeartbeat(HeartbeatOptions{Interval: time.Hour})
	peers := make([]*fakePeer, 10000)
	hb.mu.Lock()
	for i := range peers {
		peers[i] = newFakePeer(true)
		hb.conns[peers[i]] = struct{}{}
	}
	hb.mu.Unlock()
	var batch []Peer
	b.ReportAllocs()
	for b.Loop() {
		batch = hb.sweep(time.Now(), batch[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/conn")
}
