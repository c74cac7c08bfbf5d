package transport

import (
	"testing"
	"unsafe"
)

// TestConnLayout holds what Conn's field order promises: the struct fits
// the 576-byte size class (an idle connection's memory, issue 15), and the
// reader's hot fields and the writer's are more than a cache line apart, so
// the two goroutines never write to the same line (false sharing cost echo
// 3-7% when the struct was packed without this order).
func TestConnLayout(t *testing.T) {
	var c Conn
	if size := unsafe.Sizeof(c); size > 576 {
		t.Errorf("Conn is %d bytes, more than the 576-byte size class", size)
	}
	readerEnd := unsafe.Offsetof(c.started) + unsafe.Sizeof(c.started)
	for _, f := range []struct {
		name string
		off  uintptr
	}{
		{"in", unsafe.Offsetof(c.in)},
		{"lastSeen", unsafe.Offsetof(c.lastSeen)},
		{"readerState", unsafe.Offsetof(c.readerState)},
	} {
		if f.off >= readerEnd {
			t.Errorf("reader field %s at %d, after the reader's side (ends at %d)", f.name, f.off, readerEnd)
		}
	}
	writerStart := unsafe.Offsetof(c.mu)
	for _, f := range []struct {
		name string
		off  uintptr
	}{
		{"q", unsafe.Offsetof(c.q)},
		{"writing", unsafe.Offsetof(c.writing)},
		{"out", unsafe.Offsetof(c.out)},
	} {
		if f.off < writerStart {
			t.Errorf("writer field %s at %d, before the writer's side (starts at %d)", f.name, f.off, writerStart)
		}
	}
	const line = 64
	if writerStart < readerEnd+line {
		t.Errorf("the writer's side starts at %d, less than a cache line after the reader's ends (%d)", writerStart, readerEnd)
	}
}
