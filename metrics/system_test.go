package metrics_test

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/metrics"
)

// The system collector counts actors as they come and go, dead letters by
// kind, and the failures protoactor's supervision handled; after Close the
// counters stand still.
func TestSystemMetrics(t *testing.T) {
	system := actors.NewSystem(zerolog.Nop())
	c := metrics.NewSystemCollector(system)
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.GetMetric() {
				for i, l := range m.GetLabel() {
					if l.GetValue() != labels[i] {
						continue next
					}
				}
				if m.Gauge != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
		t.Fatalf("no %s %v", name, labels)
		return 0
	}
	eventually := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not in time", what)
			}
		}
	}

	base := value("wsactor_actors")
	var pids []*actor.PID
	for i := 0; i < 3; i++ {
		pids = append(pids, system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if ctx.Message() == "fail" {
				panic("on purpose")
			}
		})))
	}
	if got := value("wsactor_actors"); got != base+3 {
		t.Fatalf("actors %v after 3 spawns, want %v", got, base+3)
	}

	// The root's default strategy restarts an actor that fails: one
	// restart directive.
	system.Root.Send(pids[0], "fail")
	eventually("the restart", func() bool { return value("wsactor_actor_failures_total", "restart") == 1 })
	if v := value("wsactor_actor_failures_total", "stop"); v != 0 {
		t.Fatalf("stop directives %v", v)
	}

	for _, pid := range pids {
		if err := system.Root.StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	eventually("the actors gone", func() bool { return value("wsactor_actors") == base })

	// Sends to a stopped actor are dead letters: a user message, and a
	// system one (a stop).
	userBefore, systemBefore := value("wsactor_dead_letters_total", "user"), value("wsactor_dead_letters_total", "system")
	system.Root.Send(pids[1], "late")
	system.Root.Send(pids[1], "later")
	system.Root.Stop(pids[2])
	if u := value("wsactor_dead_letters_total", "user") - userBefore; u != 2 {
		t.Fatalf("user dead letters +%v, want +2", u)
	}
	if s := value("wsactor_dead_letters_total", "system") - systemBefore; s != 1 {
		t.Fatalf("system dead letters +%v, want +1", s)
	}

	c.Close()
	c.Close()
	system.Root.Send(pids[1], "after close")
	if u := value("wsactor_dead_letters_total", "user") - userBefore; u != 2 {
		t.Fatalf("counted after Close: +%v", u)
	}
}
