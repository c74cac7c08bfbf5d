package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/wsactor/wsactor/internal/exampletest"
)

// TestChatBrowser is the newcomer's path in headless Chromium. First on a
// 390 px wide touch screen: the page joins a room and chats without ever
// getting wider than the screen, and its icon loads. Then alice and bob
// join one room through the form and chat; bob's browser goes offline and
// the server restarts on the same port with the same -data directory.
// alice's page reconnects and recovers (nothing missed) and she says
// something; bob comes back online, and his page recovers exactly that
// message. Every page shows every message exactly once: recovery brings no
// duplicates. carol, who comes last, gets the three as history. No page fails to load a resource (such as a favicon).
// Screenshots go to $WSACTOR_ARTIFACTS/TestChatBrowser, or the test's temp
// dir.
func TestChatBrowser(t *testing.T) {
	b := exampletest.RequireBrowser(t)
	data := t.TempDir()
	s := startChat(t, "127.0.0.1:0", data)
	out := exampletest.ArtifactDir(t)
	p := b.RunNode(t, "testdata/chat.js", out, s.URL)

	exampletest.CheckPhone(t, p.Next(t, "phone"))
	p.Next(t, "restart")
	if err := s.Stop(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	startChat(t, s.Addr, data) // the same port: the pages' reconnects land here
	done := p.Next(t, "done")
	p.Wait(t)
	for _, ev := range p.All("pageerror") {
		t.Errorf("page error: %s", ev.Raw)
	}
	exampletest.CheckResourcesLoaded(t, p)

	var result struct {
		Counts map[string]map[string]int `json:"counts"` // page -> message -> how often shown
	}
	if err := json.Unmarshal(done.Result, &result); err != nil || len(result.Counts) != 3 {
		t.Fatalf("done result %s: %v", done.Result, err)
	}
	if n := result.Counts["carol"]["history"]; n != 3 {
		t.Errorf("carol's page shows %d messages of history, want the 3 said before she came", n)
	}
	delete(result.Counts, "carol")
	for page, counts := range result.Counts {
		if len(counts) != 3 {
			t.Errorf("%s: counts %v, want 3 messages", page, counts)
		}
		for text, n := range counts {
			if n != 1 {
				t.Errorf("%s shows %q %d times, want once", page, text, n)
			}
		}
	}

	if len(done.Screenshots) != 3 {
		t.Fatalf("want 3 screenshots, got %v", done.Screenshots)
	}
	for _, path := range done.Screenshots {
		png, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s: %v (want a PNG)", path, err)
		}
	}
	t.Logf("screenshots in %s", out)
}
