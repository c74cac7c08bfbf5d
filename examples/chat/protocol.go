package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wsactor/wsactor/actors"
)

// The chat protocol: one JSON object per text message, told apart by "type".
//
// Page → server:
//
//	{"type":"join","room":"lobby","name":"alice"}   once per connection
//	{"type":"say","text":"hello"}                   after join
//	{"type":"ping"}                                 every 25 s; answered with pong
//
// Server → page:
//
//	{"type":"welcome","room":"lobby","name":"alice"}
//	{"type":"presence","room":"lobby","members":[{"name":"alice","tabs":2},{"name":"bob","tabs":1}]}
//	{"type":"joined","room":"lobby","name":"bob"}   bob's first tab arrived
//	{"type":"left","room":"lobby","name":"bob"}     bob's last tab left
//	{"type":"message","room":"lobby","name":"alice","text":"hello","time":1767225600000}
//	{"type":"pong"}
//	{"type":"error","error":"message too long (at most 500 characters)"}
//
// A message that is not JSON (or is binary) closes the connection with 1007;
// anything else the server does not accept is answered with an error, and
// the tenth such answer closes the connection with 1008.

// Limits of the protocol.
const (
	maxText    = 500 // characters in a chat message
	maxName    = 24  // characters in a nickname
	maxRoom    = 32  // characters in a room name
	maxStrikes = 10  // refused messages before the connection is closed
	readLimit  = 8 << 10
)

// inbound is a message from the page, decoded on the connection's reader
// goroutine by [decode] (HandlerOptions.Decode).
type inbound struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Name string `json:"name"`
	Text string `json:"text"`
}

// outbound is a message to the page; empty fields are left out.
type outbound struct {
	Type    string     `json:"type"`
	Room    string     `json:"room,omitempty"`
	Name    string     `json:"name,omitempty"`
	Text    string     `json:"text,omitempty"`
	Time    int64      `json:"time,omitempty"` // Unix milliseconds
	Members []presence `json:"members,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// presence is one person in a room: a nickname and how many connections
// (tabs) it has there.
type presence struct {
	Name string `json:"name"`
	Tabs int    `json:"tabs"`
}

// decode is the handler's Decode hook: an error closes the connection with
// 1007 before the message reaches the actor.
func decode(typ actors.MessageType, data []byte) (any, error) {
	if typ != actors.Text {
		return nil, errors.New("chat: binary message")
	}
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("chat: invalid JSON: %w", err)
	}
	return &m, nil
}

// cleanName returns the trimmed nickname, or an error for the page.
func cleanName(s string) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 || n > maxName || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("a nickname is 1 to %d printable characters", maxName)
	}
	return s, nil
}

// cleanRoom returns the room name in lower case, or an error for the page.
// Room names become actor names, so the alphabet is small.
func cleanRoom(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	valid := len(s) > 0 && len(s) <= maxRoom && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
	if !valid {
		return "", fmt.Errorf("a room name is 1 to %d letters, digits, '-' or '_'", maxRoom)
	}
	return s, nil
}

// cleanText returns the trimmed chat message, or an error for the page.
func cleanText(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", errors.New("empty message")
	case n > maxText:
		return "", fmt.Errorf("message too long (at most %d characters)", maxText)
	}
	return s, nil
}
