package interop

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsactor/wsactor/actors"
)

// Headless Chromium (Debian's chromium, driven by Playwright in
// node/browser.js) against our server: node/page.html uses the browser's own
// WebSocket.

type pageClose struct {
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	WasClean bool   `json:"wasClean"`
}

type pageRound struct {
	Extensions string    `json:"extensions"`
	Protocol   string    `json:"protocol"`
	Messages   []summary `json:"messages"`
	Close      pageClose `json:"close"`
}

type pageResult struct {
	Error  string      `json:"error"`
	Rounds []pageRound `json:"rounds"`
}

// TestChromium: the page connects, negotiates permessage-deflate (on /ws,
// where our server enables it; /ws-plain has the server default, off),
// exchanges text and binary, is closed by the server with 4002 "later",
// reconnects, exchanges again and closes with 4001 "bye". Screenshots go to
// $WSACTOR_ARTIFACTS/TestChromium, or the test's temp dir.
func TestChromium(t *testing.T) {
	_, chromium := requireChromium(t)
	page, err := os.ReadFile(filepath.Join(nodeDir(t), "page.html"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, []route{{"/ws", enabled()}, {"/ws-plain", actors.HandlerOptions{}}},
		map[string]http.Handler{"/{$}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(page)
		})}, true)

	out := artifactDir(t)
	evs := runNode(t, "browser.js", []string{"CHROMIUM=" + chromium}, out,
		"deflate="+srv.URL+"/?ws=/ws",
		"plain="+srv.URL+"/?ws=/ws-plain")
	for _, ev := range filter(evs, "pageerror") {
		t.Errorf("page error: %s", ev.Raw)
	}
	if b := filter(evs, "browser"); len(b) == 1 {
		t.Logf("browser %s; screenshots in %s", b[0].Version, out)
	}
	results := filter(evs, "result")
	if len(results) != 2 {
		t.Fatalf("want 2 page results, got:\n%s", rawEvents(evs))
	}

	for _, tc := range []struct {
		name, path string
		deflate    bool
	}{
		{"deflate", "/ws", true},
		{"plain", "/ws-plain", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev nodeEvent
			for _, r := range results {
				if r.Name == tc.name {
					ev = r
				}
			}
			var res pageResult
			if err := json.Unmarshal(ev.Result, &res); err != nil || res.Error != "" || len(res.Rounds) != 2 {
				t.Fatalf("page result %s: %v %s", ev.Result, err, res.Error)
			}
			wantExt := ""
			if tc.deflate {
				wantExt = gorillaDeflateAnswer
			}

			// Round 1: exchange, then the server closes with 4002 "later".
			r1 := res.Rounds[0]
			if r1.Extensions != wantExt || r1.Protocol != "" {
				t.Fatalf("round 1: ws.extensions %q, protocol %q; want %q, \"\"", r1.Extensions, r1.Protocol, wantExt)
			}
			want1 := []summary{textSum(smallText), binarySum(smallBinary), textSum(bigText), binarySum(bigBinary)}
			equalSummaries(t, "round 1, page received", r1.Messages, want1)
			if r1.Close != (pageClose{Code: 4002, Reason: "later", WasClean: true}) {
				t.Fatalf("round 1 close event %+v, want 4002 \"later\" clean", r1.Close)
			}
			sc := collectConn(t, srv.events[tc.path])
			if sc.opened.Conn.Compressed() != tc.deflate {
				t.Fatalf("round 1: server Compressed() = %v, want %v", sc.opened.Conn.Compressed(), tc.deflate)
			}
			equalSummaries(t, "round 1, server received", serverSummaries(sc.messages), append(want1, textSum("!close 4002 later")))
			// Chromium echoes the code and reason of the server's close.
			checkClosed(t, sc.closed, 4002, "later", false, nil)

			// Round 2: reconnected; exchange, then the page closes with 4001 "bye".
			r2 := res.Rounds[1]
			if r2.Extensions != wantExt {
				t.Fatalf("round 2: ws.extensions %q, want %q", r2.Extensions, wantExt)
			}
			want2 := []summary{textSum("again \u2603"), binarySum([]byte{1, 2, 3})}
			equalSummaries(t, "round 2, page received", r2.Messages, want2)
			// Our server echoes the close code without a reason.
			if r2.Close != (pageClose{Code: 4001, Reason: "", WasClean: true}) {
				t.Fatalf("round 2 close event %+v, want 4001 \"\" clean", r2.Close)
			}
			sc = collectConn(t, srv.events[tc.path])
			if sc.opened.Conn.Compressed() != tc.deflate {
				t.Fatalf("round 2: server Compressed() = %v, want %v", sc.opened.Conn.Compressed(), tc.deflate)
			}
			equalSummaries(t, "round 2, server received", serverSummaries(sc.messages), want2)
			checkClosed(t, sc.closed, 4001, "bye", true, nil)

			// Both WebSocket connections' bytes, as our server's socket saw
			// them: with deflate the browser and our server both compressed.
			conns, read, written := srv.ln.traffic(tc.path)
			if conns != 2 {
				t.Fatalf("%d connections to %s, want 2", conns, tc.path)
			}
			checkTraffic(t, "server sockets for "+tc.path, tc.deflate, read, written)

			png, err := os.ReadFile(ev.Screenshot)
			if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
				t.Fatalf("screenshot %s: %v (want a PNG)", ev.Screenshot, err)
			}
		})
	}
}
