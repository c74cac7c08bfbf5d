package room

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// Keys are unique per (address, id), whichever side of the local address a
// PID is on, and a local PID's key is its Id (no allocation).
func TestKeyOf(t *testing.T) {
	const local = "127.0.0.1:8000"
	pids := []*actor.PID{
		actor.NewPID(local, "$1"),
		actor.NewPID("127.0.0.1:8001", "$1"),
		actor.NewPID(local, "\x00127.0.0.1:8001\x00$1"), // a local Id shaped like a remote key
		actor.NewPID(local, ""),
		actor.NewPID("127.0.0.1:8001", ""),
		actor.NewPID("nonhost", "$1"),
		actor.NewPID(local, "rooms/a"),
	}
	seen := map[pidKey]*actor.PID{}
	for _, p := range pids {
		k := keyOf(local, p)
		if q, ok := seen[k]; ok {
			t.Fatalf("%v and %v share the key %q", p, q, k)
		}
		seen[k] = p
		if again := keyOf(local, actor.NewPID(p.Address, p.Id)); again != k {
			t.Fatalf("%v keyed %q, then %q", p, k, again)
		}
	}
	if k := keyOf(local, pids[0]); string(k) != "$1" {
		t.Fatalf("local key %q, want the Id", k)
	}
	p := actor.NewPID(local, "$12345")
	if n := testing.AllocsPerRun(100, func() { _ = keyOf(local, p) }); n != 0 {
		t.Fatalf("a local key allocates %v times", n)
	}
}
