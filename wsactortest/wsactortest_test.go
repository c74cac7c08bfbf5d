package wsactortest_test

import (
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

func TestMain(m *testing.M) { wsactortest.VerifyTestMain(m) }

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystemWithConfig(actor.Configure(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	})))
}

// TestLeakOptionsNameTheThrottle: a dead letter starts protoactor's throttle
// goroutine; its stack holds one of the function names LeakOptions
// ignores (so the names are what this build of protoactor produces), and
// goleak with LeakOptions finds nothing while it runs.
func TestLeakOptionsNameTheThrottle(t *testing.T) {
	system := quietSystem()
	system.Root.Send(actor.NewPID(system.Address(), "nobody"), "lost")
	var stack string
	for deadline := time.Now().Add(5 * time.Second); stack == "" && time.Now().Before(deadline); {
		buf := make([]byte, 1<<20)
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "NewThrottle") {
				stack = g
			}
		}
		time.Sleep(time.Millisecond)
	}
	if stack == "" {
		t.Fatal("no throttle goroutine after a dead letter")
	}
	if !strings.Contains(stack, "\ngithub.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1(") &&
		!strings.Contains(stack, "\ngithub.com/asynkron/protoactor-go/actor.NewThrottle.func1.1(") {
		t.Fatalf("the throttle goroutine's function is not in LeakOptions:\n%s", stack)
	}
	if err := goleak.Find(wsactortest.LeakOptions()...); err != nil {
		t.Fatalf("with LeakOptions: %v", err)
	}
	wsactortest.VerifyNone(t)
}

// TestConn: the fake records frames and messages, refuses frames as told,
// and once stopped reports transport.ErrClosed; a watcher sees it stop.
func TestConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		system := quietSystem()
		c := wsactortest.NewConn(system)
		stopped := make(chan *actor.Terminated, 1)
		system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actor.Started:
				ctx.Watch(c.PID())
				ctx.Send(c.PID(), "hello")
			case *actor.Terminated:
				stopped <- m
				ctx.Stop(ctx.Self())
			}
		}))
		if err := c.SendFrame(transport.NewFrame(transport.MessageText, []byte("a"))); err != nil {
			t.Fatal(err)
		}
		c.SetSendError(transport.ErrQueueFull)
		if err := c.SendFrame(transport.NewFrame(transport.MessageText, []byte("b"))); !errors.Is(err, transport.ErrQueueFull) {
			t.Fatalf("SendFrame with a send error: %v", err)
		}
		c.SetSendError(nil)
		_ = c.SendFrame(transport.NewKeyedFrame(transport.MessageBinary, []byte("c"), "k"))
		synctest.Wait()
		if got := c.Texts(); len(got) != 2 || got[0] != "a" || got[1] != "c" {
			t.Fatalf("Texts() = %q", got)
		}
		if fs := c.Frames(); fs[1].Type() != transport.MessageBinary || fs[1].Key() != "k" {
			t.Fatalf("Frames()[1] = %v %q", fs[1].Type(), fs[1].Key())
		}
		if got := c.Messages(); len(got) != 1 || got[0] != "hello" {
			t.Fatalf("Messages() = %v", got)
		}
		c.Reset()
		if len(c.Texts())+len(c.Messages()) != 0 {
			t.Fatal("Reset kept something")
		}
		c.Stop()
		c.Stop()
		if m := <-stopped; !m.Who.Equal(c.PID()) {
			t.Fatalf("Terminated for %v", m.Who)
		}
		if err := c.SendFrame(transport.NewFrame(transport.MessageText, nil)); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("SendFrame after Stop: %v", err)
		}
		time.Sleep(system.Config.DeadLetterThrottleInterval)
	})
}
