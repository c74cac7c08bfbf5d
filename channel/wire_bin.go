package channel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// The binary encoding (docs/channels-protocol.md, "Binary encoding"): a
// type byte, a flags byte, then the fields the flags name, in bit order.

var typeCodes = map[string]byte{
	typeJoin: 1, typeLeave: 2, typePush: 3, typeReply: 4, typePing: 5,
	typeEvent: 6, typePresenceState: 7, typePresenceDiff: 8, typeLeft: 9,
}

var typeNames = [...]string{"", typeJoin, typeLeave, typePush, typeReply, typePing, typeEvent, typePresenceState, typePresenceDiff, typeLeft}

const (
	flagRef      = 0x01
	flagTopic    = 0x02
	flagEvent    = 0x04
	flagOffset   = 0x08
	flagData     = 0x10
	flagDataJSON = 0x20
	flagRest     = 0x40
	flagReserved = 0x80
)

// restMsg is what the binary encoding carries as JSON: every field of
// wireMsg but the binary ones.
type restMsg struct {
	Status  string                    `json:"status,omitempty"`
	Error   *Error                    `json:"error,omitempty"`
	Params  json.RawMessage           `json:"params,omitempty"`
	Recover *Position                 `json:"recover,omitempty"`
	History int                       `json:"history,omitempty"`
	Reason  string                    `json:"reason,omitempty"`
	State   map[string]*PresenceEntry `json:"state,omitempty"`
	Joins   map[string]*PresenceEntry `json:"joins,omitempty"`
	Leaves  map[string]*PresenceEntry `json:"leaves,omitempty"`
}

func (r *restMsg) empty() bool {
	return r.Status == "" && r.Error == nil && len(r.Params) == 0 && r.Recover == nil && r.History == 0 &&
		r.Reason == "" && r.State == nil && r.Joins == nil && r.Leaves == nil
}

// encodeBin returns m in the binary encoding.
func encodeBin(m *wireMsg) []byte {
	return appendBin(make([]byte, 0, 16+len(m.Topic)+len(m.Event)+len(m.Data)+len(m.Bin)), m)
}

func appendBin(b []byte, m *wireMsg) []byte {
	code, ok := typeCodes[m.T]
	if !ok {
		panic("channel: encoding an unknown message type " + m.T)
	}
	rest := restMsg{Status: m.Status, Error: m.Error, Params: m.Params, Recover: m.Recover, History: m.History,
		Reason: m.Reason, State: m.State, Joins: m.Joins, Leaves: m.Leaves}
	var flags byte
	if m.Ref != 0 {
		flags |= flagRef
	}
	if m.Topic != "" {
		flags |= flagTopic
	}
	if m.Event != "" {
		flags |= flagEvent
	}
	if m.Offset != 0 {
		flags |= flagOffset
	}
	switch {
	case len(m.Data) > 0:
		flags |= flagData | flagDataJSON
	case len(m.Bin) > 0:
		flags |= flagData
	}
	if !rest.empty() {
		flags |= flagRest
	}
	b = append(b, code, flags)
	if flags&flagRef != 0 {
		b = binary.AppendUvarint(b, m.Ref)
	}
	if flags&flagTopic != 0 {
		b = appendBytes(b, []byte(m.Topic))
	}
	if flags&flagEvent != 0 {
		b = appendBytes(b, []byte(m.Event))
	}
	if flags&flagOffset != 0 {
		b = binary.AppendUvarint(b, m.Offset)
	}
	if flags&flagData != 0 {
		if flags&flagDataJSON != 0 {
			b = appendBytes(b, m.Data)
		} else {
			b = appendBytes(b, m.Bin)
		}
	}
	if flags&flagRest != 0 {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&rest); err != nil {
			panic("channel: encoding a protocol message: " + err.Error())
		}
		b = appendBytes(b, bytes.TrimRight(buf.Bytes(), "\n"))
	}
	return b
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// decodeBin parses one message in the binary encoding and checks it as
// decode does. The payload is copied out of p.
func decodeBin(p []byte) (m wireMsg, err error) {
	if len(p) < 2 {
		return m, errBadRequest("binary message shorter than its header")
	}
	code, flags := p[0], p[1]
	if code == 0 || int(code) >= len(typeNames) {
		return m, errBadRequest("unknown message type code")
	}
	if flags&flagReserved != 0 || flags&flagDataJSON != 0 && flags&flagData == 0 {
		return m, errBadRequest("invalid flags")
	}
	m.T = typeNames[code]
	r := binReader{p: p[2:]}
	if flags&flagRef != 0 {
		m.Ref = r.uvarint()
	}
	if flags&flagTopic != 0 {
		m.Topic = r.text()
	}
	if flags&flagEvent != 0 {
		m.Event = r.text()
	}
	if flags&flagOffset != 0 {
		m.Offset = r.uvarint()
	}
	if flags&flagData != 0 {
		d := r.bytes()
		if flags&flagDataJSON != 0 {
			if r.err == nil && !json.Valid(d) {
				return m, errBadRequest("data flagged JSON is not JSON")
			}
			m.Data = append(json.RawMessage(nil), d...)
		} else if len(d) > 0 { // an empty bytes payload is none
			m.Bin = append([]byte{}, d...)
		}
	}
	if flags&flagRest != 0 {
		raw := r.bytes()
		if r.err == nil {
			var rest restMsg
			if len(raw) == 0 || raw[0] != '{' {
				return m, errBadRequest("rest is not a JSON object")
			}
			if err := json.Unmarshal(raw, &rest); err != nil {
				return m, errBadRequest("rest: " + jsonErr(err))
			}
			m.Status, m.Error, m.Params, m.Recover, m.History = rest.Status, rest.Error, rest.Params, rest.Recover, rest.History
			m.Reason, m.State, m.Joins, m.Leaves = rest.Reason, rest.State, rest.Joins, rest.Leaves
		}
	}
	if r.err != nil {
		return m, r.err
	}
	if len(r.p) != 0 {
		return m, errBadRequest("bytes after the last field")
	}
	return m, validate(&m)
}

// binReader reads fields; the first failure sticks.
type binReader struct {
	p   []byte
	err error
}

func (r *binReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.err = errBadRequest("bad varint")
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *binReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.p)) {
		r.err = errBadRequest("field longer than the message")
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *binReader) text() string {
	b := r.bytes()
	if r.err == nil && !utf8.Valid(b) {
		r.err = errBadRequest("name is not UTF-8")
	}
	return string(b)
}
