package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wsactor/wsactor/actors"
)

// The game protocol: one JSON object per text message.
//
// Page → server:
//
//	{"type":"input","dx":1,"dy":0}   the arrow keys held now; each -1, 0 or 1
//	{"type":"ping"}                  every 25 s; answered with pong
//
// Server → page:
//
//	{"type":"welcome","id":3,"color":"#4363d8","width":800,"height":500}
//	{"type":"state","tick":42,"players":[{"id":3,"x":120,"y":80,"color":"#4363d8"}]}
//	{"type":"pong"}
//
// A message that is not JSON (or is binary) closes the connection with 1007,
// an unknown type or an out-of-range input with 1008.

// readLimit is the largest message a page may send.
const readLimit = 1 << 10

// command is a message from the page, decoded on the connection's reader
// goroutine by [decode] (HandlerOptions.Decode).
type command struct {
	Type string `json:"type"`
	DX   int    `json:"dx"`
	DY   int    `json:"dy"`
}

type welcome struct {
	Type   string `json:"type"`
	ID     int    `json:"id"`
	Color  string `json:"color"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

type snapshot struct {
	Type    string    `json:"type"`
	Tick    uint64    `json:"tick"`
	Players []*player `json:"players"`
}

// decode is the handler's Decode hook: an error closes the connection with
// 1007 before the message reaches the actor.
func decode(typ actors.MessageType, data []byte) (any, error) {
	if typ != actors.Text {
		return nil, errors.New("game: binary message")
	}
	var c command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("game: invalid JSON: %w", err)
	}
	return &c, nil
}

func validAxis(d int) bool { return d >= -1 && d <= 1 }
