package channel_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/wsactor/wsactor/channel"
)

// assetGet does one request to srv and returns the response and its body.
func assetGet(t *testing.T, srv *httptest.Server, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return res, string(body)
}

// assetServer serves ClientHandler under /wsactor/ as the docs say to.
func assetServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/wsactor/", http.StripPrefix("/wsactor/", channel.ClientHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestClientHandlerServesFiles(t *testing.T) {
	srv := assetServer(t)
	for _, tc := range []struct {
		path, file, ctype string
	}{
		{"/wsactor/wsactor-channel.js", "client/wsactor-channel.js", "text/javascript; charset=utf-8"},
		{"/wsactor/wsactor-channel.d.ts", "client/wsactor-channel.d.ts", "application/typescript; charset=utf-8"},
	} {
		want, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		res, body := assetGet(t, srv, http.MethodGet, tc.path, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", tc.path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if body != string(want) {
			t.Errorf("GET %s: the body is not %s (%d bytes, want %d)", tc.path, tc.file, len(body), len(want))
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tc.path, got)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, got)
		}
		etag := res.Header.Get("ETag")
		if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
			t.Fatalf("GET %s: ETag %q, want a strong quoted tag", tc.path, etag)
		}
		// Revalidation with the tag: 304, no body.
		res, body = assetGet(t, srv, http.MethodGet, tc.path, http.Header{"If-None-Match": {etag}})
		if res.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("GET %s with If-None-Match %s: status %d, %d bytes; want 304 and none", tc.path, etag, res.StatusCode, len(body))
		}
		// HEAD: the headers, no body.
		res, body = assetGet(t, srv, http.MethodHead, tc.path, nil)
		if res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("HEAD %s: status %d, %d bytes, Content-Type %q", tc.path, res.StatusCode, len(body), res.Header.Get("Content-Type"))
		}
	}
	// The two files have different tags.
	js, _ := assetGet(t, srv, http.MethodGet, "/wsactor/wsactor-channel.js", nil)
	ts, _ := assetGet(t, srv, http.MethodGet, "/wsactor/wsactor-channel.d.ts", nil)
	if js.Header.Get("ETag") == ts.Header.Get("ETag") {
		t.Errorf("both files have the ETag %s", js.Header.Get("ETag"))
	}
}

func TestClientHandlerNotFound(t *testing.T) {
	srv := assetServer(t)
	for _, path := range []string{
		"/wsactor/",
		"/wsactor/index.html",
		"/wsactor/client/wsactor-channel.js",
		"/wsactor/x/wsactor-channel.js",
		"/wsactor/wsactor-channel.js.map",
		"/wsactor/WSACTOR-CHANNEL.JS",
		"/wsactor/../assets.go",
		"/wsactor-channel.js", // outside the mount
	} {
		res, _ := assetGet(t, srv, http.MethodGet, path, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}
	res, _ := assetGet(t, srv, http.MethodPost, "/wsactor/wsactor-channel.js", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q; want 405 and GET, HEAD", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestClientHandlerMounting: the handler serves at its root, whatever the
// prefix stripped in front of it, and also unmounted.
func TestClientHandlerMounting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.Handler
		path    string
	}{
		{"root", channel.ClientHandler(), "/wsactor-channel.js"},
		{"deep prefix", http.StripPrefix("/static/js/v1", channel.ClientHandler()), "/static/js/v1/wsactor-channel.js"},
		{"prefix with slash", http.StripPrefix("/assets/", channel.ClientHandler()), "/assets/wsactor-channel.js"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			res, body := assetGet(t, srv, http.MethodGet, tc.path, nil)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, "export class Socket") {
				t.Fatalf("GET %s: status %d, %d bytes; want the module", tc.path, res.StatusCode, len(body))
			}
		})
	}
}
