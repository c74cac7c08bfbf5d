package exampletest

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

// Browser is what a headless Chromium test needs: node, Chromium, and the
// node_modules holding playwright-core (installed for interop/ by
// `npm ci --prefix interop/node`).
type Browser struct {
	Node, Chromium, Modules string
}

// RequireBrowser finds node, playwright-core and Chromium, or skips the test
// saying what is missing; under CI (CI=true), which installs them in
// .ci/run, it fails instead. $WSACTOR_CHROMIUM overrides the browser's path,
// /usr/bin/chromium.
func RequireBrowser(t testing.TB) Browser {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: .ci/run installs it, so this is a failure)", msg)
		}
		t.Skipf("skipping: %s (install with .ci/run's steps: npm ci --prefix interop/node; apt-get install chromium)", msg)
	}
	var b Browser
	var err error
	if b.Node, err = exec.LookPath("node"); err != nil {
		missing("node is not installed: %v", err)
	}
	b.Modules = filepath.Join(moduleRoot(t), "interop", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(b.Modules, "playwright-core", "package.json")); err != nil {
		missing("interop/node/node_modules lacks playwright-core (run npm ci --prefix interop/node): %v", err)
	}
	if b.Chromium = os.Getenv("WSACTOR_CHROMIUM"); b.Chromium == "" {
		b.Chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(b.Chromium); err != nil {
		missing("Chromium is not installed at %s (Debian package chromium): %v", b.Chromium, err)
	}
	return b
}

// moduleRoot is the directory of the go.mod above the working directory,
// which go test makes the directory of the package under test.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ArtifactDir is where a test keeps its screenshots: $WSACTOR_ARTIFACTS/<test
// name> if that is set (created if need be), else a temp dir.
func ArtifactDir(t testing.TB) string {
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

// NodeEvent is one JSON line a browser script printed. A line that is not
// JSON is an event "raw".
type NodeEvent struct {
	Event       string          `json:"event"`
	Error       string          `json:"error"`
	Screenshots []string        `json:"screenshots"`
	Result      json.RawMessage `json:"result"`
	Raw         string          `json:"-"` // the line as printed
}

// NodeProc is a running browser script.
type NodeProc struct {
	name   string
	events chan NodeEvent
	exited chan struct{}
	err    error // the script's exit, set before exited is closed

	mu         sync.Mutex
	transcript []string
	stderr     bytes.Buffer
}

// nodeTimeout bounds one browser script, start to exit, and each wait for
// one of its events.
const nodeTimeout = 60 * time.Second

// RunNode runs `node script args...` with playwright-core on NODE_PATH and
// the browser in $CHROMIUM. The script is killed after a minute; at cleanup
// it is waited for, and its output is logged if the test failed.
func (b Browser) RunNode(t testing.TB, script string, args ...string) *NodeProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	cmd := exec.CommandContext(ctx, b.Node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+b.Modules, "CHROMIUM="+b.Chromium)
	cmd.WaitDelay = 5 * time.Second
	p := &NodeProc{name: script, events: make(chan NodeEvent, 1024), exited: make(chan struct{})}
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
			ev := NodeEvent{Event: "raw"}
			_ = json.Unmarshal(sc.Bytes(), &ev)
			ev.Raw = sc.Text()
			p.mu.Lock()
			p.transcript = append(p.transcript, ev.Raw)
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
		case <-time.After(nodeTimeout):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("node %s transcript:\n%s\nstderr:\n%s", script, p.output(), p.stderrText())
		}
	})
	return p
}

type lockedWriter struct{ p *NodeProc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

func (p *NodeProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.transcript, "\n")
}

func (p *NodeProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Next returns the next event of kind, failing the test if the script
// reports an error, exits, or stays silent for a minute.
func (p *NodeProc) Next(t testing.TB, kind string) NodeEvent {
	t.Helper()
	timeout := time.After(nodeTimeout)
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

// Wait waits for the script to exit and fails the test unless it exited 0.
func (p *NodeProc) Wait(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(nodeTimeout):
		t.Fatalf("node %s did not exit", p.name)
	}
	if p.err != nil {
		t.Fatalf("node %s: %v\n%s\nstderr:\n%s", p.name, p.err, p.output(), p.stderrText())
	}
}

// All returns every event of kind the script printed.
func (p *NodeProc) All(kind string) []NodeEvent {
	var out []NodeEvent
	for _, line := range strings.Split(p.output(), "\n") {
		var ev NodeEvent
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == kind {
			ev.Raw = line
			out = append(out, ev)
		}
	}
	return out
}

// PhoneResult is what a browser script reports, as the result of its
// "phone" event, about a page on a phone-sized screen.
type PhoneResult struct {
	Viewport int            `json:"viewport"` // the screen's width in CSS pixels
	Widths   map[string]int `json:"widths"`   // the page's scrollWidth at each step
	Icon     struct {
		Href   string `json:"href"`
		Status int    `json:"status"`
		Width  int    `json:"width"` // the decoded image's width; 0 if it did not decode
	} `json:"icon"`
}

// CheckPhone fails the test unless ev, a "phone" event, reports a page
// that never got wider than the screen (nothing to scroll sideways) and
// whose icon (the declared one, or /favicon.ico) loaded and decoded. It
// returns the result for further checks.
func CheckPhone(t testing.TB, ev NodeEvent) PhoneResult {
	t.Helper()
	var r PhoneResult
	if err := json.Unmarshal(ev.Result, &r); err != nil {
		t.Fatalf("phone result %s: %v", ev.Result, err)
	}
	if r.Viewport <= 0 || len(r.Widths) == 0 {
		t.Fatalf("phone result %s: want the viewport and the page's widths", ev.Result)
	}
	for step, w := range r.Widths {
		if w > r.Viewport {
			t.Errorf("on a %d px wide phone the page is %d px wide at %q: it scrolls sideways", r.Viewport, w, step)
		}
	}
	if r.Icon.Status != 200 || r.Icon.Width == 0 {
		t.Errorf("the page's icon %s: status %d, width %d; want 200 and an image", r.Icon.Href, r.Icon.Status, r.Icon.Width)
	}
	return r
}

// CheckResourcesLoaded fails the test if a page of the script logged a
// resource it failed to load, such as Chromium's "Failed to load resource:
// the server responded with a status of 404" for a missing favicon.
func CheckResourcesLoaded(t testing.TB, p *NodeProc) {
	t.Helper()
	for _, ev := range p.All("console") {
		if strings.Contains(ev.Raw, "Failed to load resource") && strings.Contains(ev.Raw, "status of 4") {
			t.Errorf("a page failed to load a resource: %s", ev.Raw)
		}
	}
}
