package channel

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/wsactor/wsactor/transport"
)

// Subprotocol is the WebSocket subprotocol of version 1 of the channels
// protocol with JSON messages (docs/channels-protocol.md).
const Subprotocol = "wsactor.channel.v1.json"

// SubprotocolBinary is version 1 of the channels protocol in its compact
// binary encoding, where payloads travel as raw bytes.
const SubprotocolBinary = "wsactor.channel.v1.bin"

// Message types: the "t" field of every protocol message.
const (
	typeJoin          = "join"
	typeLeave         = "leave"
	typePush          = "push"
	typeReply         = "reply"
	typePing          = "ping"
	typeEvent         = "event"
	typePresenceState = "presence_state"
	typePresenceDiff  = "presence_diff"
	typeLeft          = "left"
)

// Error codes of error replies (docs/channels-protocol.md). Your own code
// may use others; see Errorf.
const (
	CodeBadRequest    = "bad_request"
	CodeUnauthorized  = "unauthorized"
	CodeNotJoined     = "not_joined"
	CodeAlreadyJoined = "already_joined"
	CodeTooManyTopics = "too_many_topics"
	CodeTopicFull     = "topic_full"
	CodeRateLimited   = "rate_limited"
	CodeNoHandler     = "no_handler"
	CodeTimeout       = "timeout"
	CodeUnavailable   = "unavailable"
	CodeInternal      = "internal"
)

// Reasons in a "left" message and in a join reply's "reason".
const (
	leftRemoved  = "removed"
	leftStopped  = "stopped"
	leftShutdown = "shutdown"

	// Why a join's recover did not recover (JoinReply.Reason).
	ReasonEpoch   = "epoch"
	ReasonExpired = "expired"
	ReasonAhead   = "ahead"
)

const (
	// reservedPrefix starts event names the protocol keeps for itself.
	reservedPrefix = "wsactor."

	maxNameLen = 255
	maxRef     = 1<<53 - 1
)

// Position is a place in a topic's stream: the topic's epoch (which changes
// whenever its history starts anew) and the offset of an event in it (the
// first event kept has offset 1).
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Error is an error reply: a machine-readable Code, a Message for people,
// and for CodeRateLimited the milliseconds after which to retry.
type Error struct {
	Code       string `json:"code"`
	Message    string `json:"message,omitempty"`
	RetryAfter int64  `json:"retry_after,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "channel: " + e.Code
	}
	return "channel: " + e.Code + ": " + e.Message
}

// Is makes errors.Is(err, &Error{Code: c}) match any *Error with code c.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf returns an error reply with the given code and a formatted
// message, for a topic's handler to refuse a push or a join with.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// HistoryEvent is one event of a join reply's history.
type HistoryEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data,omitempty"`
	// Bin is a bytes payload (Data is then empty).
	Bin    []byte `json:"data_b64,omitempty"`
	Offset uint64 `json:"offset"`
}

// JoinReply is the data of a successful join's reply.
type JoinReply struct {
	Epoch     string          `json:"epoch"`
	Offset    uint64          `json:"offset"`
	Recovered bool            `json:"recovered"`
	Reason    string          `json:"reason,omitempty"`
	History   []HistoryEvent  `json:"history"`
	Reply     json.RawMessage `json:"reply,omitempty"`
}

// PresenceMeta is one connection of a presence key.
type PresenceMeta struct {
	ID   string          `json:"id"`
	Meta json.RawMessage `json:"meta,omitempty"`
}

// PresenceEntry is one key's connections.
type PresenceEntry struct {
	Metas []PresenceMeta `json:"metas"`
}

// wireMsg is every protocol message, decoded. Absent fields are zero.
type wireMsg struct {
	T       string          `json:"t"`
	Ref     uint64          `json:"ref,omitempty"`
	Topic   string          `json:"topic,omitempty"`
	Event   string          `json:"event,omitempty"`
	Status  string          `json:"status,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Bin     []byte          `json:"data_b64,omitempty"` // a bytes payload
	Params  json.RawMessage `json:"params,omitempty"`
	Recover *Position       `json:"recover,omitempty"`
	History int             `json:"history,omitempty"`
	Offset  uint64          `json:"offset,omitempty"`
	Reason  string          `json:"reason,omitempty"`

	State  map[string]*PresenceEntry `json:"state,omitempty"`
	Joins  map[string]*PresenceEntry `json:"joins,omitempty"`
	Leaves map[string]*PresenceEntry `json:"leaves,omitempty"`
}

// errBadRequest is a decode failure; its text is the error reply's message.
type errBadRequest string

func (e errBadRequest) Error() string { return string(e) }

// decode parses one protocol message and checks the fields its type
// requires. The error is an errBadRequest; ref is the message's ref when it
// could be read (so the error reply can answer it), else 0.
func decode(p []byte) (m wireMsg, err error) {
	if err := json.Unmarshal(p, &m); err != nil {
		m.Ref = refOf(p)
		return m, errBadRequest("not a protocol message: " + jsonErr(err))
	}
	if len(m.Bin) == 0 {
		m.Bin = nil // "data_b64":"" is no payload
	}
	return m, validate(&m)
}

// validate checks the fields m's type requires.
func validate(m *wireMsg) error {
	if m.Ref > maxRef {
		return errBadRequest("ref out of range")
	}
	if len(m.Data) > 0 && len(m.Bin) > 0 {
		return errBadRequest("both data and data_b64")
	}
	needRef := func() error {
		if m.Ref == 0 {
			return errBadRequest(m.T + " without ref")
		}
		return nil
	}
	switch m.T {
	case typeJoin:
		if err := needRef(); err != nil {
			return err
		}
		if m.History < 0 {
			return errBadRequest("negative history")
		}
		return checkName("topic", m.Topic)
	case typeLeave:
		if err := needRef(); err != nil {
			return err
		}
		return checkName("topic", m.Topic)
	case typePush:
		if err := checkName("topic", m.Topic); err != nil {
			return err
		}
		return checkName("event", m.Event)
	case typeReply:
		if err := needRef(); err != nil {
			return err
		}
		if m.Status != "ok" && m.Status != "error" {
			return errBadRequest(`reply status must be "ok" or "error"`)
		}
		if m.Status == "error" && (m.Error == nil || m.Error.Code == "") {
			return errBadRequest("error reply without error.code")
		}
		return nil
	case typePing:
		return needRef()
	case typeEvent, typePresenceState, typePresenceDiff, typeLeft:
		return checkName("topic", m.Topic)
	case "":
		return errBadRequest(`message without "t"`)
	default:
		return errBadRequest("unknown message type " + strconv.Quote(m.T))
	}
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		if te.Field != "" {
			return "field " + strconv.Quote(te.Field) + " must be " + jsonKind(te.Type.Kind().String())
		}
		return "must be a JSON object"
	default:
		return "invalid JSON"
	}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "uint64", "int":
		return "a non-negative integer"
	case "ptr", "struct", "map":
		return "an object"
	default:
		return "a " + k
	}
}

// refOf digs a usable ref out of a message that did not decode as a whole.
func refOf(p []byte) uint64 {
	var probe struct {
		Ref json.RawMessage `json:"ref"`
	}
	if json.Unmarshal(p, &probe) != nil {
		return 0
	}
	r, err := strconv.ParseUint(string(probe.Ref), 10, 64)
	if err != nil || r > maxRef {
		return 0
	}
	return r
}

func checkName(what, s string) error {
	if s == "" {
		return errBadRequest(what + " missing")
	}
	if len(s) > maxNameLen {
		return errBadRequest(what + " longer than 255 bytes")
	}
	if !utf8.ValidString(s) {
		return errBadRequest(what + " is not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errBadRequest(what + " contains a control character")
		}
	}
	return nil
}

// encode appends m's JSON to a fresh buffer. It cannot fail for the
// messages this package builds: their Data fields hold valid JSON.
func encode(m *wireMsg) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		panic("channel: encoding a protocol message: " + err.Error())
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// payload is a message's data: JSON, or bytes (docs/channels-protocol.md,
// "Payloads"); at most one is set.
type payload struct {
	json json.RawMessage
	bin  []byte
}

// toPayload turns a value from user code into a payload: []byte is a bytes
// payload (copied), json.RawMessage JSON (checked; empty means none), nil
// none, anything else is marshalled to JSON.
func toPayload(v any) (payload, error) {
	switch d := v.(type) {
	case []byte:
		if len(d) == 0 {
			return payload{}, nil // an empty bytes payload is none
		}
		return payload{bin: append([]byte{}, d...)}, nil
	case nil:
		return payload{}, nil
	case json.RawMessage:
		if len(d) == 0 {
			return payload{}, nil
		}
	}
	raw, err := marshalData(v)
	return payload{json: raw}, err
}

// frames builds a message's frames for each encoding, at most once each,
// when first asked for: a broadcast to members of both encodings encodes
// (and compresses) once per encoding.
type frames struct {
	build    func(binary bool) []byte
	txt, bin *transport.Frame
}

func (f *frames) get(binary bool) *transport.Frame {
	if binary {
		if f.bin == nil {
			f.bin = transport.NewFrame(transport.MessageBinary, f.build(true))
		}
		return f.bin
	}
	if f.txt == nil {
		f.txt = transport.NewFrame(transport.MessageText, f.build(false))
	}
	return f.txt
}

// msgFrames is frames of a message.
func msgFrames(m *wireMsg) *frames {
	return &frames{build: func(binary bool) []byte {
		if binary {
			return encodeBin(m)
		}
		return encode(m)
	}}
}

// eventFrames is frames of an "event" message, appended by hand.
func eventFrames(topic, event string, p payload, offset uint64) *frames {
	return &frames{build: func(binary bool) []byte {
		if binary {
			return encodeBin(&wireMsg{T: typeEvent, Topic: topic, Event: event, Data: p.json, Bin: p.bin, Offset: offset})
		}
		return appendEvent(make([]byte, 0, len(topic)+len(event)+len(p.json)+len(p.bin)*4/3+64), topic, event, p, offset)
	}}
}

// marshalData turns a value from user code into JSON (params, metas, join
// replies): a json.RawMessage or []byte holding JSON is used as is (after a
// validity check), nil becomes absent, anything else is marshalled.
func marshalData(v any) (json.RawMessage, error) {
	switch d := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if !json.Valid(d) {
			return nil, errors.New("channel: data is not valid JSON")
		}
		return d, nil
	case []byte:
		if !json.Valid(d) {
			return nil, errors.New("channel: data is not valid JSON")
		}
		return json.RawMessage(d), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("channel: encoding data: %w", err)
	}
	return b, nil
}

// The hot messages (events, join replies) are built by appending, not by
// encoding/json: the payloads are JSON already (checked when they came in)
// and the names are checked UTF-8 without control characters, so only '"'
// and '\' need escaping. The bytes equal encode's for the same message.

// appendString appends s as a JSON string. s must be valid UTF-8; control
// characters are escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8 {
			// U+2028 and U+2029, escaped as encoding/json does (JavaScript
			// before ES2019 took them for line ends).
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[s[i+2]&0xf])
			i += 2
			start = i + 1
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEvent appends an "event" message.
func appendEvent(b []byte, topic, event string, p payload, offset uint64) []byte {
	b = append(b, `{"t":"event","topic":`...)
	b = appendString(b, topic)
	b = append(b, `,"event":`...)
	b = appendString(b, event)
	b = appendPayload(b, p)
	if offset > 0 {
		b = append(b, `,"offset":`...)
		b = strconv.AppendUint(b, offset, 10)
	}
	return append(b, '}')
}

// appendHistoryEvent appends one entry of a join reply's history, as
// HistoryEvent encodes.
func appendHistoryEvent(b []byte, event string, p payload, offset uint64) []byte {
	b = append(b, `{"event":`...)
	b = appendString(b, event)
	b = appendPayload(b, p)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, offset, 10)
	return append(b, '}')
}

// appendPayload appends ,"data":JSON or ,"data_b64":"base64", or nothing.
func appendPayload(b []byte, p payload) []byte {
	switch {
	case len(p.json) > 0:
		b = append(b, `,"data":`...)
		b = append(b, p.json...)
	case len(p.bin) > 0:
		b = append(b, `,"data_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, p.bin)
		b = append(b, '"')
	}
	return b
}
