package wsactortest_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsactor/wsactor/wsactortest"
)

// A write returns once buffered; the writer waits only when the buffer is
// full, and a write deadline then fires on fake time.
func TestBufferedPipeBuffersThenBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := wsactortest.BufferedPipe(8)
		defer a.Close()
		defer b.Close()
		if n, err := a.Write([]byte("12345678")); n != 8 || err != nil {
			t.Fatalf("write into an empty buffer: %d, %v", n, err)
		}
		start := time.Now()
		_ = a.SetWriteDeadline(start.Add(time.Second))
		n, err := a.Write([]byte("9"))
		if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write into a full buffer: %d, %v; want a timeout", n, err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("timed out after %v, want 1s of fake time", d)
		}
		_ = a.SetWriteDeadline(time.Time{})
		done := make(chan error, 1)
		go func() { _, err := a.Write([]byte("9ab")); done <- err }()
		synctest.Wait()
		buf := make([]byte, 5)
		if n, _ := b.Read(buf); string(buf[:n]) != "12345" {
			t.Fatalf("read %q", buf[:n])
		}
		if err := <-done; err != nil {
			t.Fatalf("blocked write after a read: %v", err)
		}
		got, _ := io.ReadAll(io.LimitReader(b, 6))
		if string(got) != "6789ab" {
			t.Fatalf("read %q, want the rest in order", got)
		}
	})
}

// Close: the peer reads what was buffered, then io.EOF; its writes fail;
// a blocked read wakes; a read deadline fires.
func TestBufferedPipeCloseAndDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := wsactortest.BufferedPipe(0)
		_ = b.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past deadline: %v", err)
		}
		_ = b.SetReadDeadline(time.Time{})
		_, _ = a.Write([]byte("last"))
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
		got, err := io.ReadAll(b)
		if string(got) != "last" || err != nil {
			t.Fatalf("after peer close: %q, %v; want the buffered bytes then EOF", got, err)
		}
		if _, err := b.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write to a closed peer: %v", err)
		}
		c, d := wsactortest.BufferedPipe(0)
		errc := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 1)); errc <- err }()
		synctest.Wait()
		c.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read after own Close: %v", err)
		}
		d.Close()
		b.Close()
	})
}
