package guides_test

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// user is the principal of an authenticated connection.
type user struct {
	Name  string
	Admin bool
}

// sessions stands in for your session store or token verifier.
var sessions = map[string]user{
	"t-alice":   {Name: "alice"},
	"t-root":    {Name: "root", Admin: true},
	"t-mallory": {Name: "mallory"},
}

var errBanned = errors.New("banned")

// authenticate runs before the upgrade. It may read anything in the
// request: headers, cookies, the query. What it returns becomes
// Conn.Principal; an error refuses the upgrade (401 by default).
func authenticate(r *http.Request) (any, error) {
	token := r.URL.Query().Get("token") // browsers cannot set headers on a WebSocket
	if c, err := r.Cookie("session"); err == nil {
		token = c.Value // a session cookie works too (same site)
	}
	u, ok := sessions[token]
	switch {
	case !ok:
		return nil, &transport.HTTPError{
			Status: http.StatusUnauthorized,
			Header: http.Header{"WWW-Authenticate": {`Bearer realm="chat"`}},
			Err:    errors.New("unknown token"),
		}
	case u.Name == "mallory":
		return nil, &transport.HTTPError{Status: http.StatusForbidden, Err: errBanned}
	}
	return u, nil
}

// Authentication during the upgrade, and the principal in the behaviour.
func Example_authenticate() {
	system := actors.NewSystem(zerolog.Nop())
	var opts actors.HandlerOptions
	opts.Authenticate = authenticate
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				u := m.Conn.Principal().(user)
				_ = m.Conn.SendText(fmt.Sprintf("hello %s (admin: %t)", u.Name, u.Admin))
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	_, resp, _ := websocket.DefaultDialer.Dial(url, nil)
	fmt.Println("no token:", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	_, resp, _ = websocket.DefaultDialer.Dial(url+"?token=t-mallory", nil)
	fmt.Println("banned:", resp.StatusCode)

	for _, dial := range []struct {
		url    string
		header http.Header
	}{
		{url + "?token=t-alice", nil},
		{url, http.Header{"Cookie": {"session=t-root"}}},
	} {
		c, _, err := websocket.DefaultDialer.Dial(dial.url, dial.header)
		if err != nil {
			log.Fatal(err)
		}
		_, p, _ := c.ReadMessage()
		fmt.Println(string(p))
		c.Close()
	}
	// Output:
	// no token: 401 Bearer realm="chat"
	// banned: 403
	// hello alice (admin: false)
	// hello root (admin: true)
}

// Browsers send an Origin header; by default only the page's own host may
// connect. OriginPatterns allows others.
func Example_originPatterns() {
	system := actors.NewSystem(zerolog.Nop())
	var opts actors.HandlerOptions
	opts.OriginPatterns = []string{"app.example.com", "*.example.org"}
	h, err := actors.NewHandler(system, func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) }, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	host := strings.TrimPrefix(url, "ws://")
	for _, origin := range []string{"", "http://" + host, "https://app.example.com", "https://eu.example.org", "https://evil.example.net"} {
		c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {origin}})
		if err == nil {
			c.Close()
		}
		label := origin
		switch origin {
		case "":
			label = "no Origin (not a browser)"
		case "http://" + host:
			label = "same host"
		}
		fmt.Println(label+":", resp.StatusCode)
	}
	// Output:
	// no Origin (not a browser): 101
	// same host: 101
	// https://app.example.com: 101
	// https://eu.example.org: 101
	// https://evil.example.net: 403
}

// The server picks the first subprotocol the client offers that it speaks;
// a behaviour can refuse clients that share none.
func Example_subprotocols() {
	system := actors.NewSystem(zerolog.Nop())
	var opts actors.HandlerOptions
	opts.Subprotocols = []string{"chat.v2", "chat.v1"}
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok && m.Conn.Subprotocol() == "" {
				m.Conn.Close(actors.StatusPolicyViolation, "speak chat.v1 or chat.v2")
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	for _, offer := range [][]string{{"chat.v1"}, {"chat.v3", "chat.v2", "chat.v1"}, {"irc"}} {
		d := websocket.Dialer{Subprotocols: offer}
		c, _, err := d.Dial(url, nil)
		if err != nil {
			log.Fatal(err)
		}
		if c.Subprotocol() != "" {
			fmt.Printf("%v: %s\n", offer, c.Subprotocol())
		} else {
			_, _, err := c.ReadMessage()
			fmt.Printf("%v: %v\n", offer, err)
		}
		c.Close()
	}
	// Output:
	// [chat.v1]: chat.v1
	// [chat.v3 chat.v2 chat.v1]: chat.v2
	// [irc]: websocket: close 1008 (policy violation): speak chat.v1 or chat.v2
}
