package supervisor

import (
	"strconv"

	"github.com/twmb/murmur3"
)

// Connection actors' names are chosen for protoactor's process registry.
// At the pinned version (actor/process_registry.go) the registry spreads
// actors by murmur3 of their id over 1,024 buckets of 32 Go maps each,
// 32,768 maps in all, and a Go map holding one entry costs a 288-byte group.
// With the usual ids ("$N") every connection of a server with tens of
// thousands of them lands in a map of its own: ~250 bytes each, a tenth of an
// idle connection's heap. Names whose ids hash into the first connBuckets
// buckets share connBuckets×32 maps, which grow as tables (~50 bytes an
// entry at 10,000 connections). Finding one takes 1024/connBuckets hashes
// on average, about a microsecond. Only memory depends on the registry's
// layout: any name works, and the names are unique either way.
const (
	registryBuckets = 1024 // len(actor.SliceMap.LocalPIDs) at the pinned version
	connBuckets     = 16
)

// connNames makes the connection actors' names: "c" and a base-36 counter,
// skipping those whose id falls outside the chosen buckets. Used only by
// the connections branch's goroutine.
type connNames struct {
	n   uint64
	buf []byte
}

// next returns the next name for a child of the actor whose id is parent.
func (g *connNames) next(parent string) string {
	for {
		g.n++
		g.buf = append(g.buf[:0], parent...)
		g.buf = append(g.buf, "/c"...)
		g.buf = strconv.AppendUint(g.buf, g.n, 36)
		if registryBucket(g.buf) < connBuckets {
			return string(g.buf[len(parent)+1:])
		}
	}
}

// registryBucket is the registry's bucket for an actor id, as protoactor
// computes it (SliceMap.GetBucket).
func registryBucket(id []byte) int {
	return int(murmur3.Sum32(id)) % registryBuckets
}
