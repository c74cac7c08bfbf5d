package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

func TestEchoExample(t *testing.T) {
	var out, logs exampletest.Buffer
	r := exampletest.Start(t, func(ctx context.Context) error {
		return run(ctx, []string{"-addr", "127.0.0.1:0", "-n", "3"}, &out, &logs)
	})
	out.Wait(t, regexp.MustCompile(`server still running`))
	if err := r.Stop(); err != nil { // what SIGINT does
		t.Fatalf("run: %v", err)
	}
	got := out.String()
	if n := len(regexp.MustCompile(`echo \d+: round trip`).FindAllString(got, -1)); n != 3 {
		t.Fatalf("want 3 round trips, got %d in:\n%s", n, got)
	}
	for _, want := range []string{"connected (permessage-deflate: false)", "closed: 1000", "shut down"} {
		if !strings.Contains(got, want) {
			t.Fatalf("output lacks %q:\n%s", want, got)
		}
	}
	if l := logs.String(); !strings.Contains(l, "connected") || !strings.Contains(l, "permessage-deflate=false") || !strings.Contains(l, "disconnected") {
		t.Fatalf("the server logged no connection:\n%s", l)
	}
}

func TestHelp(t *testing.T) {
	exampletest.CheckHelp(t, "echo", "addr", "client", "deflate", "n", "server-only")
}

// TestEchoDeflate: with -deflate the server accepts permessage-deflate (a
// gorilla client that offers it gets it, and the server logs so) and the
// client offers it (the Go client run with -client negotiates it with that
// server and prints so); without it neither does.
func TestEchoDeflate(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[deflate], func(t *testing.T) {
			flags := []string{}
			if deflate {
				flags = append(flags, "-deflate")
			}
			var out, logs exampletest.Buffer
			exampletest.Start(t, func(ctx context.Context) error {
				return run(ctx, append([]string{"-addr", "127.0.0.1:0", "-server-only"}, flags...), &out, &logs)
			})
			url := out.Wait(t, regexp.MustCompile(`listening on (\S+)`))[1]

			dialer := websocket.Dialer{EnableCompression: true, HandshakeTimeout: 5 * time.Second}
			c, resp, err := dialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if got := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"); got != deflate {
				t.Fatalf("server answered Sec-WebSocket-Extensions %q to an offer", resp.Header.Get("Sec-WebSocket-Extensions"))
			}

			// The server logs what it negotiated with each client.
			logs.Wait(t, regexp.MustCompile(`connected .*permessage-deflate=`+strconv.FormatBool(deflate)))

			var cout exampletest.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), exampletest.WaitTimeout)
			defer cancel()
			if err := run(ctx, append([]string{"-client", url, "-n", "2"}, flags...), &cout, &exampletest.Buffer{}); err != nil {
				t.Fatalf("client: %v", err)
			}
			want := "connected (permessage-deflate: " + strconv.FormatBool(deflate) + ")"
			if got := cout.String(); !strings.Contains(got, want) || !strings.Contains(got, "echo 2: round trip") {
				t.Fatalf("client output lacks %q and two round trips:\n%s", want, got)
			}
		})
	}
}

// TestLogColour: logs are coloured on a terminal only.
func TestLogColour(t *testing.T) { exampletest.CheckLogColour(t, newLogger) }
