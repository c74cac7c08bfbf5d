//go:build !linux

package transport

import (
	"testing"
	"time"
)

// TestLastHeardIsLastSeen: without the kernel's word, LastHeard is LastSeen.
func TestLastHeardIsLastSeen(t *testing.T) {
	t.Parallel()
	c := &Conn{}
	c.lastSeen.Store(time.Now().Add(-time.Hour).UnixNano())
	if !c.LastHeard().Equal(c.LastSeen()) {
		t.Fatalf("LastHeard %v, want LastSeen %v", c.LastHeard(), c.LastSeen())
	}
}
