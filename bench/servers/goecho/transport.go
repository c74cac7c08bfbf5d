package main

import (
	"log"
	"net"
	"net/http"

	"github.com/wsactor/wsactor/transport"
)

// serveTransport serves ln with wsactor's transport alone: no actors, no
// rooms; each message is sent back to its sender from its reader, as a new
// frame (what the room does for a member).
func serveTransport(ln net.Listener) {
	a, err := transport.NewAcceptor(nil)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.Accept(w, r)
		if err != nil {
			return
		}
		c.Start(echoHandler{})
	})))
}

type echoHandler struct{}

func (echoHandler) HandleMessage(c *transport.Conn, typ transport.MessageType, data []byte) {
	_ = c.Send(transport.NewFrame(typ, data))
}

func (echoHandler) HandleClose(*transport.Conn, transport.CloseInfo) {}
