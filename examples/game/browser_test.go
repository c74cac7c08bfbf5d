package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/wsactor/wsactor/internal/exampletest"
)

// TestGameBrowser loads the page in headless Chromium. On a 390 px wide
// touch screen the page fits the screen, its icon loads, and a pointer held
// on the board moves the player's dot toward it. On a desktop it sees a
// snapshot drawn on the canvas (the pixel under the player's own dot has its
// colour), holds an arrow key and sees the dot move. No page fails to load a
// resource (such as a favicon). The screenshots go to
// $WSACTOR_ARTIFACTS/TestGameBrowser, or the test's temp dir.
func TestGameBrowser(t *testing.T) {
	b := exampletest.RequireBrowser(t)
	g := startRun(t, "-tick", "20ms")
	out := exampletest.ArtifactDir(t)
	p := b.RunNode(t, "testdata/game.js", out, g.URL)
	phone := p.Next(t, "phone")
	exampletest.CheckPhone(t, phone)
	var touched struct {
		Moved int `json:"moved"`
	}
	if err := json.Unmarshal(phone.Result, &touched); err != nil || touched.Moved == 0 {
		t.Errorf("phone result %s: the held pointer did not move the dot (%v)", phone.Result, err)
	}
	done := p.Next(t, "done")
	p.Wait(t)
	for _, ev := range p.All("pageerror") {
		t.Errorf("page error: %s", ev.Raw)
	}
	exampletest.CheckResourcesLoaded(t, p)
	var res struct {
		Me       int      `json:"me"`
		Color    string   `json:"color"`
		Pixels   []string `json:"pixels"` // under the dot, before and after moving
		Rendered int      `json:"rendered"`
	}
	if err := json.Unmarshal(done.Result, &res); err != nil {
		t.Fatalf("result %s: %v", done.Result, err)
	}
	if res.Me == 0 || res.Rendered == 0 || len(res.Pixels) != 2 {
		t.Fatalf("result %s: want a player id, rendered snapshots and two pixels", done.Result)
	}
	for _, px := range res.Pixels {
		if px != res.Color {
			t.Fatalf("pixel under the player's dot is %s, want its colour %s", px, res.Color)
		}
	}
	if len(done.Screenshots) != 1 {
		t.Fatalf("want 1 screenshot, got %v", done.Screenshots)
	}
	png, err := os.ReadFile(done.Screenshots[0])
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s: %v (want a PNG)", done.Screenshots[0], err)
	}
	t.Logf("player %d, %d snapshots drawn; screenshot in %s", res.Me, res.Rendered, out)
}
