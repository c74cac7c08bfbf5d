package actors_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// protoactor's own logs go to the user's zerolog logger, as JSON without
// duplicate keys (its dead-letter line has an attribute named "message").
func TestSystemLogsToZerolog(t *testing.T) {
	var buf lockedBuffer
	system := actors.NewSystem(zerolog.New(&buf))
	pid := system.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	system.Root.StopFuture(pid).Wait()
	system.Root.Send(pid, "to a dead actor") // a dead letter, logged by protoactor

	deadline := time.Now().Add(5 * time.Second)
	for {
		var sawStart, sawDeadLetter bool
		for _, line := range buf.lines() {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not JSON: %q: %v", line, err)
			}
			if strings.Count(line, `"message":`) > 1 {
				t.Fatalf("duplicate message key: %s", line)
			}
			if m["lib"] != "protoactor" {
				t.Fatalf("line without lib=protoactor: %s", line)
			}
			sawStart = sawStart || m["message"] == "actor system started"
			sawDeadLetter = sawDeadLetter || m["message"] == "[DeadLetter]"
		}
		if sawStart && sawDeadLetter {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("protoactor logs missing (start %v, dead letter %v): %v", sawStart, sawDeadLetter, buf.lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
