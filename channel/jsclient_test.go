package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// jsTimeout bounds one run of the browser client's node unit tests.
const jsTimeout = 60 * time.Second

// jsMissing skips the test because a prerequisite is not installed, except
// under CI (CI=true), which installs them in .ci/run and so must fail.
func jsMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run installs it, so this is a failure)", msg)
	}
	t.Skipf("skipping: %s (install with .ci/run's steps: npm ci --prefix interop/node)", msg)
}

// jsNode returns node and interop/node's node_modules, which must hold ws.
func jsNode(t *testing.T) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		jsMissing(t, "node is not installed: %v", err)
	}
	modules, err = filepath.Abs(filepath.Join("..", "interop", "node", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "ws", "package.json")); err != nil {
		jsMissing(t, "interop/node/node_modules lacks ws (run npm ci --prefix interop/node): %v", err)
	}
	return node, modules
}

// jsCheck is one line client_unit.js prints.
type jsCheck struct {
	Check  string          `json:"check"`
	OK     bool            `json:"ok"`
	Got    json.RawMessage `json:"got"`
	Want   json.RawMessage `json:"want"`
	Error  string          `json:"error"`
	Done   bool            `json:"done"`
	Passed int             `json:"passed"`
	Failed int             `json:"failed"`
}

// TestClientJS runs the browser client's unit tests (testdata/client_unit.js)
// under node, against fake servers made with the ws package: joins and
// history, duplicates, pushes and their replies, server pushes, presence,
// reconnects with recovery, the offline buffer, close codes that stop
// reconnecting, and the heartbeat.
func TestClientJS(t *testing.T) {
	node, modules := jsNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "client_unit.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var done *jsCheck
	checks := 0
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var c jsCheck
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Errorf("not a JSON line: %s", sc.Text())
			continue
		}
		switch {
		case c.Done:
			done = &c
		case c.OK:
			checks++
		default:
			t.Errorf("%s: got %s, want %s %s", c.Check, c.Got, c.Want, c.Error)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("client_unit.js did not finish within %v\nstderr:\n%s", jsTimeout, stderr.String())
	}
	if runErr != nil || done == nil || done.Failed != 0 || done.Passed != checks || checks == 0 {
		t.Fatalf("client_unit.js: %v; summary %+v after %d passed checks\nstderr:\n%s", runErr, done, checks, stderr.String())
	}
	t.Logf("%d checks passed", checks)
}
