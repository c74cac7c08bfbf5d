package migrate_test

import (
	"bufio"
	"fmt"
	"io"
	"log"

	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// ws README: "Use the Node.js streams API". NetConn is
// createWebSocketStream: a net.Conn whose Read returns the bytes of
// successive messages and whose Write sends one message per call.
func Example_streams() {
	system := actors.NewSystem(zerolog.Nop())
	url, stop := echoServer(system)
	defer stop()

	ctx, cancel := dialTimeout()
	defer cancel()
	c, _, err := transport.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	duplex := transport.NetConn(c, transport.MessageText) // starts the connection
	defer duplex.Close()

	// In a program: go io.Copy(duplex, os.Stdin); io.Copy(os.Stdout, duplex)
	_, _ = io.WriteString(duplex, "hello ")
	_, _ = io.WriteString(duplex, "stream\n")
	line, err := bufio.NewReader(duplex).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line)
	// Output: hello stream
}
