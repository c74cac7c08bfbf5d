package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/cluster"
)

// event is what the page receives, as JSON text messages.
type event struct {
	Type string `json:"type"`           // "joined", "chat", "system", "error"
	Room string `json:"room,omitempty"` // joined
	Node string `json:"node,omitempty"` // the node that sent it (its HTTP address)
	From string `json:"from,omitempty"` // chat: the sender's name
	Text string `json:"text,omitempty"`
}

func encode(e event) []byte {
	b, _ := json.Marshal(e)
	return b
}

// chat is one WebSocket connection of the chat page: it joins the cluster
// room named in ?room= (default "lobby") as ?name=, and publishes every text
// message it receives to the room, as a "chat" event. The sender gets its
// own messages back, which is how the page shows them.
type chat struct {
	node  *cluster.Node
	label string // this node's HTTP address, shown on the page
	room  *cluster.Room
	name  string
	conn  *actors.Conn
	in    bool // joined
}

// joinDone reports the join goroutine's result to the connection actor.
type joinDone struct{ err error }

func (c *chat) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		q := m.Conn.Request().URL.Query()
		roomName := q.Get("room")
		if roomName == "" {
			roomName = "lobby"
		}
		c.name = q.Get("name")
		if c.name == "" {
			c.name = "anon-" + m.Conn.ID()
		}
		c.conn = m.Conn
		c.room = c.node.Room(roomName)
		// Join waits for the room's grain, possibly on another node: do it
		// off the actor and report back.
		root, self, r, conn, name := ctx.ActorSystem().Root, ctx.Self(), c.room, m.Conn, c.name
		go func() {
			jctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := r.Join(jctx, conn, &cluster.JoinOptions{User: name, Meta: name})
			root.Send(self, &joinDone{err: err})
		}()
	case *joinDone:
		if m.err != nil {
			_ = c.conn.Send(actors.Text, encode(event{Type: "error", Text: m.err.Error()}))
			c.conn.Close(actors.StatusTryAgainLater, "could not join")
			return
		}
		c.in = true
		_ = c.conn.Send(actors.Text, encode(event{Type: "joined", Room: c.room.Name(), Node: c.label}))
		_ = c.room.Publish(&cluster.Broadcast{Data: encode(event{Type: "system", Node: c.label, Text: c.name + " joined"}), Except: c.conn.PID()})
	case *actors.Message:
		if !c.in || m.Type != actors.Text {
			return
		}
		_ = c.room.Publish(&cluster.Broadcast{Data: encode(event{Type: "chat", Node: c.label, From: c.name, Text: m.Text()})})
	case *cluster.RoomMoved:
		why := "moved"
		if m.NodeLost {
			why = "its node died"
		}
		_ = c.conn.Send(actors.Text, encode(event{Type: "system", Node: c.label,
			Text: fmt.Sprintf("room %s: grain %s; now on %s", m.Room, why, m.To)}))
	case *actors.Closed:
		if c.in {
			_ = c.room.Publish(&cluster.Broadcast{Data: encode(event{Type: "system", Node: c.label, Text: c.name + " left"})})
		}
	}
}

// page is the chat page: pick a name and a room, and chat with users on
// any node of the cluster.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>wsactor cluster chat</title>
<style>
body{font:15px system-ui,sans-serif;margin:2em;max-width:46em}
#log{border:1px solid #ccc;height:22em;overflow-y:auto;padding:.5em;white-space:pre-wrap}
.system{color:#777}.error{color:#b00}.node{color:#06c;font-size:85%}
input{font:inherit}
</style></head><body>
<h1>wsactor cluster chat</h1>
<p>This page is served by node <b id="me"></b>. Open the other nodes' pages: everyone in a room sees every message, whichever node they are on.</p>
<form id="join">name <input id="name" size="10"> room <input id="room" value="lobby" size="10"> <button>join</button></form>
<div id="log"></div>
<form id="say"><input id="text" size="50" autocomplete="off" disabled> <button disabled id="send">send</button></form>
<script>
const $ = id => document.getElementById(id);
$("me").textContent = location.host;
$("name").value = "user" + Math.floor(Math.random() * 1000);
let ws;
function line(cls, text) {
  const d = document.createElement("div"); d.className = cls; d.textContent = text;
  $("log").appendChild(d); $("log").scrollTop = $("log").scrollHeight;
}
$("join").onsubmit = e => {
  e.preventDefault();
  if (ws) ws.close();
  const q = new URLSearchParams({name: $("name").value, room: $("room").value});
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?" + q);
  ws.onmessage = m => {
    const e = JSON.parse(m.data);
    if (e.type === "chat") line("chat", e.from + " (" + e.node + "): " + e.text);
    else if (e.type === "joined") { line("system", "joined " + e.room + " on " + e.node); $("text").disabled = $("send").disabled = false; $("text").focus(); }
    else line(e.type, e.text + (e.node ? "  [" + e.node + "]" : ""));
  };
  ws.onclose = ev => { line("error", "disconnected (" + ev.code + ")"); $("text").disabled = $("send").disabled = true; };
};
$("say").onsubmit = e => { e.preventDefault(); if ($("text").value) ws.send($("text").value); $("text").value = ""; };
</script></body></html>
`
