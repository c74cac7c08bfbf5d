package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/wsactor/wsactor/internal/exampletest"
)

// TestChatBrowser is the newcomer's path in headless Chromium. First on a
// 390 px wide touch screen: the page joins a room and chats without ever
// getting wider than the screen, and its icon loads. Then two tabs join one
// room through the form, one types a message and the other sees it; then
// the server restarts on the same port, both pages reconnect and join again
// by themselves, and chat once more. No page fails to load a resource (such
// as a favicon). Screenshots go to $WSACTOR_ARTIFACTS/TestChatBrowser, or
// the test's temp dir.
func TestChatBrowser(t *testing.T) {
	b := exampletest.RequireBrowser(t)
	s := startChat(t, "127.0.0.1:0")
	out := exampletest.ArtifactDir(t)
	p := b.RunNode(t, "testdata/chat.js", out, s.URL)

	exampletest.CheckPhone(t, p.Next(t, "phone"))
	p.Next(t, "restart")
	if err := s.Stop(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	startChat(t, s.Addr) // the same port: the pages' reconnects land here
	done := p.Next(t, "done")
	p.Wait(t)
	for _, ev := range p.All("pageerror") {
		t.Errorf("page error: %s", ev.Raw)
	}
	exampletest.CheckResourcesLoaded(t, p)
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
