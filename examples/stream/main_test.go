package main

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/internal/exampletest"
)

// The stream example does not use protoactor, so unlike the others it
// ignores only the transport's process-wide poller and idle pooled
// writers, not protoactor's dead-letter throttle (exampletest.VerifyNoLeaks
// ignores all three).
func TestMain(m *testing.M) {
	exampletest.RunAsMain(main)
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/wsactor/wsactor/transport.(*poller).run"),
		goleak.IgnoreTopFunction("github.com/wsactor/wsactor/transport.(*writerPool).next"))
}

// program is one run of the example with its own stdin, stdout and stderr.
type program struct {
	stdin       *io.PipeWriter
	out, errOut *exampletest.Buffer
	cancel      context.CancelFunc // what SIGINT does
	done        chan error
}

func start(t *testing.T, args ...string) *program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in, stdin := io.Pipe()
	p := &program{stdin: stdin, out: new(exampletest.Buffer), errOut: new(exampletest.Buffer), cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, args, in, p.out, p.errOut) }()
	t.Cleanup(func() {
		cancel()
		stdin.Close() // ends the stdin copier, which run does not wait for
	})
	return p
}

func (p *program) write(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("stdin: %v", err)
	}
}

func (p *program) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("run: %v\nstderr:\n%s", err, p.errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not return\nstderr:\n%s", p.errOut.String())
	}
}

// The default mode: a server and a client piping stdin through it; the run
// ends when stdin does.
func TestServerAndClient(t *testing.T) {
	p := start(t, "-addr", "127.0.0.1:0", "-q", "50ms")
	p.write(t, "hello\n")
	p.out.Wait(t, regexp.MustCompile(`^HELLO\n$`))
	p.write(t, "a line in ")                 // a message without a newline...
	p.write(t, "two writes\nand one more\n") // ...is joined with the next by the stream
	p.out.Wait(t, regexp.MustCompile(`^HELLO\nA LINE IN TWO WRITES\nAND ONE MORE\n$`))
	p.stdin.Close()
	p.wait(t)
	if !strings.Contains(p.errOut.String(), "shut down") {
		t.Fatalf("stderr:\n%s", p.errOut.String())
	}
}

// All of stdin at once (echo hello | stream): the client waits for the
// answers before it closes.
func TestStdinAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, errOut := new(exampletest.Buffer), new(exampletest.Buffer)
	in := strings.NewReader("one\ntwo\nthree\n")
	if err := run(ctx, []string{"-addr", "127.0.0.1:0", "-q", "300ms"}, in, out, errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if got := out.String(); got != "ONE\nTWO\nTHREE\n" {
		t.Fatalf("stdout %q\nstderr:\n%s", got, errOut.String())
	}
}

// A server and a separate client (-connect): stopping the server ends the
// client's stream with EOF (close 1001), and both return cleanly.
func TestServerShutdownEndsClient(t *testing.T) {
	server := start(t, "-addr", "127.0.0.1:0", "-server-only")
	url := server.errOut.Wait(t, regexp.MustCompile(`listening on (\S+)`))[1]
	client := start(t, "-connect", url)
	client.write(t, "still there?\n")
	client.out.Wait(t, regexp.MustCompile(`^STILL THERE\?\n$`))

	server.cancel()
	server.wait(t)
	client.wait(t) // the server's 1001 is a normal end of stream
}

// TestHelp: -h prints the usage and exits 0, with no log line.
func TestHelp(t *testing.T) {
	exampletest.CheckHelp(t, "stream", "addr", "connect", "server-only", "q")
}

// TestLogColour: logs are coloured on a terminal only.
func TestLogColour(t *testing.T) { exampletest.CheckLogColour(t, newLogger) }
