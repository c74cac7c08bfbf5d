package interop

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// Node's ws client (node/ws-client.js) against our server (actors.Handler
// with the echo behaviour).

// gorillaDeflateAnswer is our server's Sec-WebSocket-Extensions answer when it
// accepts permessage-deflate: always without context takeover.
const gorillaDeflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

func enabled() actors.HandlerOptions {
	var o actors.HandlerOptions
	o.Compression = transport.CompressionEnabled
	return o
}

// wsClient runs one ws-client.js scenario against path on srv.
func wsClient(t *testing.T, srv *server, path, scenario string, env ...string) []nodeEvent {
	t.Helper()
	return runNode(t, "ws-client.js", env, srv.wsURL(path), scenario)
}

// TestWSClientEcho: text and binary round trips (empty ones too), with every permessage-deflate
// offer ws can make, against our server with compression enabled and with its
// default (off). Our server must accept the variants it supports (answering
// with no context takeover) and decline the others cleanly, and compressed
// traffic must really be compressed both ways.
func TestWSClientEcho(t *testing.T) {
	requireNode(t)
	cases := []struct {
		name     string
		server   actors.HandlerOptions
		pmd      string // ws's perMessageDeflate option
		offer    string // the Sec-WebSocket-Extensions ws sends, "" for none
		accepted bool
	}{
		{"enabled/ws-default-offer", enabled(), "true", "permessage-deflate; client_max_window_bits", true},
		{"enabled/ws-no-context-takeover", enabled(), `{"serverNoContextTakeover":true,"clientNoContextTakeover":true}`,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits", true},
		{"enabled/ws-client-window-10", enabled(), `{"clientMaxWindowBits":10}`, "permessage-deflate; client_max_window_bits=10", true},
		{"enabled/ws-threshold-0", enabled(), `{"threshold":0}`, "permessage-deflate; client_max_window_bits", true},
		{"enabled/ws-server-window-15", enabled(), `{"serverMaxWindowBits":15}`,
			"permessage-deflate; server_max_window_bits=15; client_max_window_bits", true},
		{"enabled/ws-server-window-10-declined", enabled(), `{"serverMaxWindowBits":10}`,
			"permessage-deflate; server_max_window_bits=10; client_max_window_bits", false},
		{"enabled/ws-deflate-off", enabled(), "false", "", false},
		{"default/ws-default-offer-declined", actors.HandlerOptions{}, "true", "permessage-deflate; client_max_window_bits", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, []route{{"/ws", tc.server}}, nil, false)
			evs := wsClient(t, srv, "/ws", "echo", "PMD="+tc.pmd)
			sc := collectConn(t, srv.events["/ws"])

			open := only(t, evs, "open")
			wantExt, wantAnswer := "", ""
			if tc.accepted {
				wantExt, wantAnswer = "permessage-deflate", gorillaDeflateAnswer
			}
			if open.Extensions != wantExt || open.Response != wantAnswer {
				t.Fatalf("ws: extensions %q, server answered %q; want %q, %q", open.Extensions, open.Response, wantExt, wantAnswer)
			}
			if got := sc.opened.Conn.Request().Header.Get("Sec-WebSocket-Extensions"); got != tc.offer {
				t.Fatalf("server saw offer %q, want %q", got, tc.offer)
			}
			if sc.opened.Conn.Compressed() != tc.accepted {
				t.Fatalf("server Compressed() = %v, want %v", sc.opened.Conn.Compressed(), tc.accepted)
			}

			want := []summary{textSum(""), binarySum(nil), textSum(smallText), binarySum(smallBinary), textSum(bigText), binarySum(bigBinary)}
			equalSummaries(t, "ws received", summaries(evs), want)
			equalSummaries(t, "server received", serverSummaries(sc.messages), want)

			cl := only(t, evs, "close")
			// Our server answers a close by echoing the code without a reason.
			if cl.Code != 1000 || cl.Reason != "" {
				t.Fatalf("ws close event %d %q, want 1000 \"\"", cl.Code, cl.Reason)
			}
			checkClosed(t, sc.closed, 1000, "done", true, nil)
			checkTraffic(t, "ws client socket", tc.accepted, int64(cl.BytesRead), int64(cl.BytesWritten))
			if evs[len(evs)-1].Event != "done" || len(filter(evs, "error")) != 0 {
				t.Fatalf("ws client did not finish cleanly:\n%s", rawEvents(evs))
			}
		})
	}
}

// TestWSClientFragments: ws sends messages with fin: false fragments (a text
// message with a ping between fragments and a UTF-8 character split across
// fragments, and a binary message in four fragments, compressed when deflate
// is on); our server must reassemble each into one message.
func TestWSClientFragments(t *testing.T) {
	requireNode(t)
	for _, deflate := range []bool{false, true} {
		t.Run("deflate="+strconv.FormatBool(deflate), func(t *testing.T) {
			opts := actors.HandlerOptions{}
			if deflate {
				opts = enabled()
			}
			srv := startServer(t, []route{{"/ws", opts}}, nil, false)
			evs := wsClient(t, srv, "/ws", "fragments")
			sc := collectConn(t, srv.events["/ws"])
			if sc.opened.Conn.Compressed() != deflate {
				t.Fatalf("Compressed() = %v, want %v", sc.opened.Conn.Compressed(), deflate)
			}
			want := []summary{textSum(fragText), binarySum(bigBinary)}
			equalSummaries(t, "server received", serverSummaries(sc.messages), want)
			equalSummaries(t, "ws received", summaries(evs), want)
			if pong := only(t, evs, "pong"); pong.Data != "mid-message" {
				t.Fatalf("pong for the ping between fragments carried %q, want %q", pong.Data, "mid-message")
			}
			checkClosed(t, sc.closed, 1000, "done", true, nil)
		})
	}
}

// TestWSClientReadLimit: a message exactly at our server's read limit passes;
// one byte more closes the connection with 1009, which ws reports. With
// deflate the limit applies to the inflated size.
func TestWSClientReadLimit(t *testing.T) {
	requireNode(t)
	const limit = 64 << 10
	for _, deflate := range []bool{false, true} {
		t.Run("deflate="+strconv.FormatBool(deflate), func(t *testing.T) {
			opts := actors.HandlerOptions{}
			if deflate {
				opts = enabled()
			}
			opts.ReadLimit = limit
			srv := startServer(t, []route{{"/ws", opts}}, nil, false)
			evs := wsClient(t, srv, "/ws", "limit", "LIMIT="+strconv.Itoa(limit))
			sc := collectConn(t, srv.events["/ws"])
			atLimit := textSum(strings.Repeat("a", limit))
			equalSummaries(t, "ws received", summaries(evs), []summary{atLimit})
			equalSummaries(t, "server received", serverSummaries(sc.messages), []summary{atLimit})
			if cl := only(t, evs, "close"); cl.Code != 1009 || cl.Reason != "message too big" {
				t.Fatalf("ws close event %d %q, want 1009 \"message too big\"", cl.Code, cl.Reason)
			}
			// ws echoes the close frame it got, code and reason.
			checkClosed(t, sc.closed, 1009, "message too big", false, transport.ErrMessageTooBig)
		})
	}
}

// TestWSClientPing: ws's ping gets our pong with the same payload, and our
// server's ping reaches ws (its 'ping' event) and is answered: the pong
// updates Conn.RTT.
func TestWSClientPing(t *testing.T) {
	requireNode(t)
	srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
	evs := wsClient(t, srv, "/ws", "ping")
	sc := collectConn(t, srv.events["/ws"])
	if pong := only(t, evs, "pong"); pong.Data != "client-ping" {
		t.Fatalf("ws got pong %q, want %q", pong.Data, "client-ping")
	}
	if ping := only(t, evs, "ping"); ping.Data != "server-ping" {
		t.Fatalf("ws got ping %q, want %q", ping.Data, "server-ping")
	}
	// ws answered the ping before it sent its close frame.
	if sc.opened.Conn.RTT() <= 0 {
		t.Fatalf("RTT = %v after ws's pong, want > 0", sc.opened.Conn.RTT())
	}
	checkClosed(t, sc.closed, 1000, "done", true, nil)
}

// TestWSClientHeartbeat runs ws's README client heartbeat (every ping re-arms
// a timer that terminates the connection) against our server's pings: while
// our server pings, the client keeps the connection; when the pings stop, it
// terminates it, and our server reports an abnormal closure (1006).
func TestWSClientHeartbeat(t *testing.T) {
	requireNode(t)
	t.Run("kept-alive", func(t *testing.T) {
		srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
		evs := wsClient(t, srv, "/ws", "heartbeat", "PINGS=3", "HB_MS=10000")
		sc := collectConn(t, srv.events["/ws"])
		var got []string
		for _, ev := range filter(evs, "ping") {
			got = append(got, ev.Data)
		}
		if strings.Join(got, ",") != "hb-1,hb-2,hb-3" {
			t.Fatalf("ws got pings %q, want hb-1,hb-2,hb-3", got)
		}
		if hb := only(t, evs, "heartbeat"); hb.Pings != 3 || hb.Terminated {
			t.Fatalf("heartbeat: %d pings, terminated %v; want 3, false", hb.Pings, hb.Terminated)
		}
		if cl := only(t, evs, "close"); cl.Code != 1000 {
			t.Fatalf("ws close event %d, want 1000", cl.Code)
		}
		checkClosed(t, sc.closed, 1000, "done", true, nil)
	})
	t.Run("pings-stop", func(t *testing.T) {
		srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
		evs := wsClient(t, srv, "/ws", "heartbeat-lost", "PINGS=2", "HB_MS=1000")
		sc := collectConn(t, srv.events["/ws"])
		if hb := only(t, evs, "heartbeat"); hb.Pings != 2 || !hb.Terminated {
			t.Fatalf("heartbeat: %d pings, terminated %v; want 2, true", hb.Pings, hb.Terminated)
		}
		if cl := only(t, evs, "close"); cl.Code != 1006 {
			t.Fatalf("ws close event %d, want 1006 (terminated)", cl.Code)
		}
		checkClosed(t, sc.closed, 1006, "", true, io.ErrUnexpectedEOF)
	})
}

// TestWSClientCloseCodes: close codes and reasons both ways.
func TestWSClientCloseCodes(t *testing.T) {
	requireNode(t)
	t.Run("ws-closes-4001", func(t *testing.T) {
		srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
		evs := wsClient(t, srv, "/ws", "close-client")
		sc := collectConn(t, srv.events["/ws"])
		checkClosed(t, sc.closed, 4001, "bye", true, nil)
		if cl := only(t, evs, "close"); cl.Code != 4001 || cl.Reason != "" {
			t.Fatalf("ws close event %d %q, want our echo 4001 \"\"", cl.Code, cl.Reason)
		}
	})
	t.Run("ws-closes-without-code", func(t *testing.T) {
		srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
		evs := wsClient(t, srv, "/ws", "close-client-no-code")
		sc := collectConn(t, srv.events["/ws"])
		// An empty close frame is reported as 1005 and answered empty.
		checkClosed(t, sc.closed, 1005, "", true, nil)
		if cl := only(t, evs, "close"); cl.Code != 1005 || cl.Reason != "" {
			t.Fatalf("ws close event %d %q, want 1005 \"\"", cl.Code, cl.Reason)
		}
	})
	t.Run("server-closes-with-long-reason", func(t *testing.T) {
		// A reason over the 123 bytes a close frame can carry is cut at a
		// UTF-8 boundary: 100 two-byte runes become 61 (122 bytes), which ws
		// accepts as valid UTF-8.
		srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
		evs := wsClient(t, srv, "/ws", "close-server", "CLOSE_CMD=!close 4003 "+strings.Repeat("\u00e9", 100))
		sc := collectConn(t, srv.events["/ws"])
		want := strings.Repeat("\u00e9", 61)
		if cl := only(t, evs, "close"); cl.Code != 4003 || cl.Reason != want {
			t.Fatalf("ws close event %d %q, want 4003 %q", cl.Code, cl.Reason, want)
		}
		checkClosed(t, sc.closed, 4003, want, false, nil)
	})
	t.Run("server-closes-4002", func(t *testing.T) {
		srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
		evs := wsClient(t, srv, "/ws", "close-server")
		sc := collectConn(t, srv.events["/ws"])
		if cl := only(t, evs, "close"); cl.Code != 4002 || cl.Reason != "later" {
			t.Fatalf("ws close event %d %q, want 4002 \"later\"", cl.Code, cl.Reason)
		}
		// ws echoes code and reason.
		checkClosed(t, sc.closed, 4002, "later", false, nil)
	})
}

// TestWSClientSubprotocol: ws offers subprotocols; our server picks the first
// offered one it speaks. With none in common our server proceeds without one
// (RFC 6455 allows it, and browsers accept it), and ws refuses the handshake
// itself ("Server sent no subprotocol"): our server sees the socket dropped.
func TestWSClientSubprotocol(t *testing.T) {
	requireNode(t)
	opts := actors.HandlerOptions{}
	opts.Subprotocols = []string{"chat.v1", "chat.v2"}
	t.Run("common", func(t *testing.T) {
		srv := startServer(t, []route{{"/ws", opts}}, nil, false)
		evs := wsClient(t, srv, "/ws", "close-client", "PROTOCOLS=chat.v3,chat.v2,chat.v1")
		sc := collectConn(t, srv.events["/ws"])
		if open := only(t, evs, "open"); open.Protocol != "chat.v2" {
			t.Fatalf("ws protocol %q, want chat.v2", open.Protocol)
		}
		if sc.opened.Conn.Subprotocol() != "chat.v2" {
			t.Fatalf("server Subprotocol() %q, want chat.v2", sc.opened.Conn.Subprotocol())
		}
		checkClosed(t, sc.closed, 4001, "bye", true, nil)
	})
	t.Run("none-in-common", func(t *testing.T) {
		srv := startServer(t, []route{{"/ws", opts}}, nil, false)
		evs := wsClient(t, srv, "/ws", "close-client", "PROTOCOLS=chat.v3")
		if he := only(t, evs, "handshake-error"); he.Error != "Server sent no subprotocol" {
			t.Fatalf("ws handshake error %q, want %q", he.Error, "Server sent no subprotocol")
		}
		sc := collectConn(t, srv.events["/ws"])
		if sc.opened.Conn.Subprotocol() != "" {
			t.Fatalf("server Subprotocol() %q, want none", sc.opened.Conn.Subprotocol())
		}
		checkClosed(t, sc.closed, 1006, "", true, io.ErrUnexpectedEOF)
	})
}

// TestWSClientBurst: ws sends 1000 messages back to back (some over its
// compression threshold) to a server whose connection reads at most 8
// messages ahead of its actor; every echo comes back, in order.
func TestWSClientBurst(t *testing.T) {
	requireNode(t)
	const n = 1000
	for _, deflate := range []bool{false, true} {
		t.Run("deflate="+strconv.FormatBool(deflate), func(t *testing.T) {
			opts := actors.HandlerOptions{InboxLimit: 8}
			if deflate {
				opts.Compression = transport.CompressionEnabled
			}
			srv := startServer(t, []route{{"/ws", opts}}, nil, false)
			evs := wsClient(t, srv, "/ws", "burst", "BURST="+strconv.Itoa(n))
			if b := only(t, evs, "burst"); b.Received != n || b.Mismatches != 0 {
				t.Fatalf("ws got %d echoes with %d out of order or wrong, want %d and 0: %s", b.Received, b.Mismatches, n, b.Raw)
			}
			sc := collectConn(t, srv.events["/ws"])
			if len(sc.messages) != n {
				t.Fatalf("server got %d messages, want %d", len(sc.messages), n)
			}
			for i, m := range sc.messages {
				want := "m-" + strconv.Itoa(i)
				if i%10 == 9 {
					want += " " + strings.Repeat("x", 2048)
				}
				if m.Text() != want {
					t.Fatalf("server message %d = %.20q, want %.20q", i, m.Text(), want)
				}
			}
			checkClosed(t, sc.closed, 1000, "done", true, nil)
		})
	}
}

// TestWSClientServerShutdown: Handler.Shutdown closes a connected ws client
// with 1001 "server shutting down", which ws reports.
func TestWSClientServerShutdown(t *testing.T) {
	requireNode(t)
	srv := startServer(t, []route{{"/ws", actors.HandlerOptions{}}}, nil, false)
	p := startNode(t, "ws-client.js", nil, srv.wsURL("/ws"), "wait-close")
	opened := waitFor[*actors.Opened](t, srv.events["/ws"])
	p.next(t, "open", byEvent("open", 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.handlers["/ws"].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	closed := waitFor[*actors.Closed](t, srv.events["/ws"])
	if closed.Conn != opened.Conn {
		t.Fatal("Closed of another connection")
	}
	// ws echoes code and reason.
	checkClosed(t, closed, 1001, "server shutting down", false, nil)
	if cl := p.next(t, "close", byEvent("close", 0)); cl.Code != 1001 || cl.Reason != "server shutting down" {
		t.Fatalf("ws close event %d %q, want 1001 \"server shutting down\"", cl.Code, cl.Reason)
	}
	p.waitExit(t)
}
