package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/wsactor/wsactor/transport"
)

// pipe dials url and copies in to the connection and the connection to out,
// each message's bytes as a stream (ws's createWebSocketStream with
// process.stdin.pipe(duplex) and duplex.pipe(process.stdout)).
//
// It returns when the server closes the connection, when ctx is done, or
// once in has ended and the server has then been quiet for linger: a
// WebSocket cannot be half-closed, so answers still on their way when we
// close would be lost (netcat's -q).
func pipe(ctx context.Context, url string, in io.Reader, out io.Writer, linger time.Duration) error {
	c, _, err := transport.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	nc := transport.NetConn(c, transport.MessageText)

	seen := &activity{w: out}
	readDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(seen, nc)
		readDone <- err
	}()
	// A Read on os.Stdin cannot be interrupted, so this goroutine is not
	// waited for: it ends at the next read or write after the close.
	inDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(nc, in)
		close(inDone)
	}()

	select {
	case err := <-readDone: // the server closed (EOF after 1000 or 1001)
		_ = nc.Close()
		return wrap(err)
	case <-ctx.Done():
	case <-inDone:
		waitQuiet(ctx, seen, linger, readDone)
	}
	_ = nc.Close() // close 1000, wait for the server's answer
	return wrap(<-readDone)
}

// waitQuiet returns once nothing has arrived for linger, or the reader or ctx
// is done (a reader result is put back for the caller).
func waitQuiet(ctx context.Context, seen *activity, linger time.Duration, readDone chan error) {
	for {
		last := seen.n.Load()
		select {
		case err := <-readDone:
			readDone <- err
			return
		case <-ctx.Done():
			return
		case <-time.After(linger):
			if seen.n.Load() == last {
				return
			}
		}
	}
}

func wrap(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// activity is a Writer that counts writes, so the client can tell when the
// server went quiet.
type activity struct {
	w io.Writer
	n atomic.Int64
}

func (a *activity) Write(p []byte) (int, error) {
	a.n.Add(1)
	return a.w.Write(p)
}
