package channel

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The ring against a plain slice: random appends of random sizes, expiries
// and byte trims, for several sizes, TTLs and byte limits. After every step
// the kept events, lastN and since agree with the model.
func TestHistoryRingMatchesModel(t *testing.T) {
	for _, size := range []int{1, 2, 3, 16, 17, 100} {
		for _, limit := range []int{0, 50, 500} {
			rng := rand.New(rand.NewPCG(uint64(size), uint64(limit)))
			h := newHistory(size, 10*time.Second, limit)
			var model []kept
			now := time.Unix(0, 0)
			for step := range 2000 {
				now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
				if rng.IntN(10) == 0 {
					h.expire(now)
					for len(model) > 0 && now.Sub(model[0].at) > h.ttl {
						model = model[1:]
					}
				} else {
					data := json.RawMessage(`"` + strings.Repeat("x", rng.IntN(60)) + `"`)
					off := h.append("e", payload{json: data}, now)
					model = append(model, kept{offset: off, at: now, event: "e", p: payload{json: data}})
					if len(model) > size {
						model = model[len(model)-size:]
					}
					cost := 0
					for _, k := range model {
						cost += k.cost()
					}
					for limit > 0 && cost > limit && len(model) > 1 {
						cost -= model[0].cost()
						model = model[1:]
					}
				}
				got := h.lastN(size)
				if len(got) != len(model) {
					t.Fatalf("size %d limit %d step %d: %d kept, model %d", size, limit, step, len(got), len(model))
				}
				bytes := 0
				for i := range got {
					if got[i].Offset != model[i].offset || string(got[i].Data) != string(model[i].p.json) {
						t.Fatalf("size %d limit %d step %d: event %d is %d, model %d", size, limit, step, i, got[i].Offset, model[i].offset)
					}
					bytes += model[i].cost()
				}
				if h.bytes != bytes {
					t.Fatalf("size %d limit %d step %d: %d bytes counted, model %d", size, limit, step, h.bytes, bytes)
				}
				if len(model) > 0 {
					from := model[0].offset - 1
					missed, reason := h.since(Position{Epoch: h.epoch, Offset: from})
					if reason != "" || len(missed) != len(model) {
						t.Fatalf("since(%d): %d events, %q; model %d", from, len(missed), reason, len(model))
					}
					if from > 0 {
						if _, reason := h.since(Position{Epoch: h.epoch, Offset: from - 1}); reason != ReasonExpired {
							t.Fatalf("since(%d) before the oldest kept: %q, want expired", from-1, reason)
						}
					}
				}
			}
		}
	}
}
