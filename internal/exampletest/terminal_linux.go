package exampletest

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// Terminal is the terminal side of a pseudo-terminal, for tests of output
// that differs on a terminal (such as coloured logs): writes to File appear
// in Output, as a person at the terminal would see them. Both ends are
// closed at cleanup.
type Terminal struct {
	File *os.File // the terminal: isatty is true for it

	mu   sync.Mutex
	seen bytes.Buffer
	more chan struct{} // closed and replaced on every read
}

// NewTerminal opens a pseudo-terminal (Linux's /dev/ptmx), or skips the test
// where there is none.
func NewTerminal(t testing.TB) *Terminal {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var unlock int32
	if err := ioctl(ptmx, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		ptmx.Close()
		t.Skipf("no pseudo-terminal: unlock: %v", err)
	}
	var n uint32
	if err := ioctl(ptmx, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		ptmx.Close()
		t.Skipf("no pseudo-terminal: number: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	term := &Terminal{File: pts, more: make(chan struct{})}
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			term.mu.Lock()
			term.seen.Write(buf[:n])
			close(term.more)
			term.more = make(chan struct{})
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		pts.Close()
		ptmx.Close() // ends the reader
		<-read
	})
	return term
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// Output waits until the terminal has shown a line (or WaitTimeout passed)
// and returns everything it has shown.
func (term *Terminal) Output() string {
	timeout := time.After(WaitTimeout)
	for {
		term.mu.Lock()
		s, more := term.seen.String(), term.more
		term.mu.Unlock()
		if bytes.ContainsRune([]byte(s), '\n') {
			return s
		}
		select {
		case <-more:
		case <-timeout:
			return s
		}
	}
}
