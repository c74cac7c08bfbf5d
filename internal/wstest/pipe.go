package wstest

import (
	"context"
	"errors"
	"net/http"

	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

// Pipe returns the two ends of one WebSocket connection made through the
// real opening handshake (transport.Accept on the server end,
// transport.Dial on the client end) over a wsactortest.BufferedPipe. accept and dial may be
// nil; dial's NetDialContext and Proxy are replaced. Neither end is
// started: call Start on each with its handler. Close both when done.
func Pipe(ctx context.Context, accept *transport.AcceptOptions, dial *transport.DialOptions) (server, client *transport.Conn, err error) {
	type accepted struct {
		c   *transport.Conn
		err error
	}
	got := make(chan accepted, 1)
	srv := wsactortest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r, accept)
		got <- accepted{c, err}
	}))
	defer srv.Close()
	var o transport.DialOptions
	if dial != nil {
		o = *dial
	}
	o.NetDialContext = srv.Net.Dial
	o.Proxy = transport.NoProxy
	client, _, err = transport.Dial(ctx, srv.URL, &o)
	if err != nil {
		select {
		case a := <-got:
			if a.c != nil {
				a.c.Terminate(err)
			}
		default:
		}
		return nil, nil, err
	}
	a := <-got
	if a.err != nil {
		client.Terminate(a.err)
		return nil, nil, errors.Join(errors.New("wstest: pipe: server end"), a.err)
	}
	return a.c, client, nil
}
