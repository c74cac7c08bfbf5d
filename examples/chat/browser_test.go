package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChatBrowser is the newcomer's path in headless Chromium: two tabs
// join one room through the form, one types a message and the other sees
// it; then the server restarts on the same port, both pages reconnect and
// join again by themselves, and chat once more. Screenshots go to
// $WSACTOR_ARTIFACTS/TestChatBrowser, or the test's temp dir.
func TestChatBrowser(t *testing.T) {
	b := requireBrowser(t)
	s := startChat(t, "127.0.0.1:0")
	out := artifactDir(t)
	p := b.start(t, "testdata/chat.js", out, s.URL)

	p.next(t, "restart")
	if err := s.Stop(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	startChat(t, s.Addr) // the same port: the pages' reconnects land here
	done := p.next(t, "done")
	p.wait(t)
	for _, ev := range p.all("pageerror") {
		t.Errorf("page error: %s", ev.raw)
	}
	if len(done.Screenshots) != 2 {
		t.Fatalf("want 2 screenshots, got %v", done.Screenshots)
	}
	for _, path := range done.Screenshots {
		png, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s: %v (want a PNG)", path, err)
		}
	}
	t.Logf("screenshots in %s", out)
}

// --- headless Chromium through interop/node's playwright-core ---------------

// browser is what a browser test needs: node, Chromium, and the
// node_modules holding playwright-core (installed for interop/ by
// `npm ci --prefix interop/node`).
type browser struct {
	node, chromium, modules string
}

// requireBrowser finds node, playwright-core and Chromium, or skips the test
// saying what is missing; under CI (CI=true), which installs them in
// .ci/run, it fails instead.
func requireBrowser(t *testing.T) browser {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: .ci/run installs it, so this is a failure)", msg)
		}
		t.Skipf("skipping: %s (install with .ci/run's steps: npm ci --prefix interop/node; apt-get install chromium)", msg)
	}
	var b browser
	var err error
	if b.node, err = exec.LookPath("node"); err != nil {
		missing("node is not installed: %v", err)
	}
	if b.modules, err = filepath.Abs("../../interop/node/node_modules"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.modules, "playwright-core", "package.json")); err != nil {
		missing("interop/node/node_modules lacks playwright-core (run npm ci --prefix interop/node): %v", err)
	}
	if b.chromium = os.Getenv("WSACTOR_CHROMIUM"); b.chromium == "" {
		b.chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(b.chromium); err != nil {
		missing("Chromium is not installed at %s (Debian package chromium): %v", b.chromium, err)
	}
	return b
}

// artifactDir is $WSACTOR_ARTIFACTS/<test name> if set, else a temp dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WSACTOR_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeEvent is one JSON line the script printed.
type nodeEvent struct {
	Event       string          `json:"event"`
	Error       string          `json:"error"`
	Screenshots []string        `json:"screenshots"`
	Result      json.RawMessage `json:"result"`
	raw         string
}

// nodeProc is a running browser script.
type nodeProc struct {
	name   string
	events chan nodeEvent
	exited chan struct{}
	err    error // the script's exit, set before exited is closed

	mu         sync.Mutex
	transcript []string
	stderr     bytes.Buffer
}

// procTimeout bounds one browser script, start to exit.
const procTimeout = 60 * time.Second

// start runs `node script args...` with playwright-core on NODE_PATH. The
// script is killed after procTimeout; at cleanup it is waited for, and its
// output is logged if the test failed.
func (b browser) start(t *testing.T, script string, args ...string) *nodeProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	cmd := exec.CommandContext(ctx, b.node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+b.modules, "CHROMIUM="+b.chromium)
	cmd.WaitDelay = 5 * time.Second
	p := &nodeProc{name: script, events: make(chan nodeEvent, 1024), exited: make(chan struct{})}
	cmd.Stderr = lockedWriter{p}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node %s: %v", script, err)
	}
	go func() {
		defer close(p.exited)
		defer cancel()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			ev := nodeEvent{Event: "raw"}
			_ = json.Unmarshal(sc.Bytes(), &ev)
			ev.raw = sc.Text()
			p.mu.Lock()
			p.transcript = append(p.transcript, ev.raw)
			p.mu.Unlock()
			select {
			case p.events <- ev:
			default: // the transcript keeps it
			}
		}
		p.err = cmd.Wait()
		close(p.events)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		case <-time.After(procTimeout):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("node %s transcript:\n%s\nstderr:\n%s", script, p.output(), p.stderrText())
		}
	})
	return p
}

type lockedWriter struct{ p *nodeProc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

func (p *nodeProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.transcript, "\n")
}

func (p *nodeProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// next returns the next event of kind, failing the test if the script
// reports an error, exits, or stays silent for procTimeout.
func (p *nodeProc) next(t *testing.T, kind string) nodeEvent {
	t.Helper()
	timeout := time.After(procTimeout)
	for {
		select {
		case ev, ok := <-p.events:
			switch {
			case !ok:
				<-p.exited
				t.Fatalf("node %s exited (%v) while the test waited for %q\n%s\nstderr:\n%s", p.name, p.err, kind, p.output(), p.stderrText())
			case ev.Event == "error":
				t.Fatalf("node %s failed while the test waited for %q: %s", p.name, kind, ev.Error)
			case ev.Event == kind:
				return ev
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %q from node %s", kind, p.name)
		}
	}
}

// wait waits for the script to exit and fails the test unless it exited 0.
func (p *nodeProc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(procTimeout):
		t.Fatalf("node %s did not exit", p.name)
	}
	if p.err != nil {
		t.Fatalf("node %s: %v\n%s\nstderr:\n%s", p.name, p.err, p.output(), p.stderrText())
	}
}

// all returns every event of kind the script printed.
func (p *nodeProc) all(kind string) []nodeEvent {
	var out []nodeEvent
	for _, line := range strings.Split(p.output(), "\n") {
		var ev nodeEvent
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == kind {
			ev.raw = line
			out = append(out, ev)
		}
	}
	return out
}
