package channel

import (
	"encoding/json"
	"testing"
)

// The hand-made encodings give exactly encode's bytes.
func FuzzAppendEvent(f *testing.F) {
	f.Add("room:1", "msg", `{"text":"hi"}`, uint64(7))
	f.Add("a\"b\\c", "é\u2028x", `"<b>&"`, uint64(0))
	f.Add("t\x7f", "e", ``, uint64(1<<53-1))
	f.Fuzz(func(t *testing.T, topic, event, data string, offset uint64) {
		if checkName("topic", topic) != nil || checkName("event", event) != nil {
			return
		}
		var raw json.RawMessage
		if data != "" {
			if !json.Valid([]byte(data)) {
				return
			}
			raw, _ = marshalData(json.RawMessage(data))
			// encode compacts; the appenders keep the bytes as they came
			// (both valid JSON). Compare on compact data.
			var c []byte
			c, _ = json.Marshal(raw)
			raw = c
		}
		want := encode(&wireMsg{T: typeEvent, Topic: topic, Event: event, Data: raw, Offset: offset})
		if got := appendEvent(nil, topic, event, payload{json: raw}, offset); string(got) != string(want) {
			t.Fatalf("appendEvent:\n got %s\nwant %s", got, want)
		}
		if offset == 0 {
			return
		}
		w, _ := json.Marshal(HistoryEvent{Event: event, Data: raw, Offset: offset})
		var v1, v2 any
		got := appendHistoryEvent(nil, event, payload{json: raw}, offset)
		if json.Unmarshal(got, &v1) != nil || json.Unmarshal(w, &v2) != nil {
			t.Fatalf("appendHistoryEvent %s is not JSON", got)
		}
		if !equalJSON(v1, v2) {
			t.Fatalf("appendHistoryEvent:\n got %s\nwant %s", got, w)
		}
	})
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// decode never panics, and what it accepts is a message of a known type
// whose names pass checkName; what it refuses is a bad request.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"t":"join","ref":1,"topic":"room:1","recover":{"epoch":"x","offset":3},"history":5}`,
		`{"t":"push","topic":"a","event":"b","data":[1,{"c":null}]}`,
		`{"t":"reply","ref":9,"status":"error","error":{"code":"x"}}`,
		`{"t":"ping","ref":18446744073709551615}`, `[]`, `{"t":1}`, `{"ref":-1}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decode(p)
		if err != nil {
			if _, ok := err.(errBadRequest); !ok {
				t.Fatalf("error %T %v, want errBadRequest", err, err)
			}
			return
		}
		switch m.T {
		case typeJoin, typeLeave, typePush, typeReply, typePing, typeEvent, typePresenceState, typePresenceDiff, typeLeft:
		default:
			t.Fatalf("accepted type %q", m.T)
		}
		if m.Ref > maxRef {
			t.Fatalf("accepted ref %d", m.Ref)
		}
		if m.T != typeReply && m.T != typePing && checkName("topic", m.Topic) != nil {
			t.Fatalf("accepted topic %q", m.Topic)
		}
	})
}

// The binary encoding round-trips every message, and decodeBin refuses
// what is not one without panicking.
func FuzzDecodeBin(f *testing.F) {
	seeds := []*wireMsg{
		{T: typeEvent, Topic: "room:1", Event: "msg", Data: json.RawMessage(`{"a":1}`), Offset: 7},
		{T: typePush, Ref: 3, Topic: "g", Event: "snap", Bin: []byte{0, 1, 2, 255}},
		{T: typeJoin, Ref: 1, Topic: "t", Recover: &Position{Epoch: "E", Offset: 2}, History: 5, Params: json.RawMessage(`"x"`)},
		{T: typeReply, Ref: 9, Status: "error", Error: &Error{Code: "nope", Message: "m"}},
		{T: typePing, Ref: 1<<53 - 1},
		{T: typePresenceDiff, Topic: "t", Joins: map[string]*PresenceEntry{"a": {Metas: []PresenceMeta{{ID: "i"}}}}, Leaves: map[string]*PresenceEntry{}},
	}
	for _, m := range seeds {
		f.Add(encodeBin(m))
	}
	f.Add([]byte{6, 0x80})
	f.Add([]byte{3, 0x12, 1, 'a', 200})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeBin(p)
		if err != nil {
			if _, ok := err.(errBadRequest); !ok {
				t.Fatalf("error %T %v, want errBadRequest", err, err)
			}
			return
		}
		again, err := decodeBin(encodeBin(&m))
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatalf("round trip:\n%s\n%s", a, b)
		}
	})
}

func TestBinaryEncodingShape(t *testing.T) {
	// An event: type, flags, topic, event, offset, payload; nothing else.
	got := encodeBin(&wireMsg{T: typeEvent, Topic: "t", Event: "e", Offset: 300, Bin: []byte{9}})
	want := []byte{6, flagTopic | flagEvent | flagOffset | flagData, 1, 't', 1, 'e', 0xac, 0x02, 1, 9}
	if string(got) != string(want) {
		t.Fatalf("event: % x, want % x", got, want)
	}
	for _, bad := range [][]byte{{}, {6}, {0, 0}, {10, 0}, {6, 0x80}, {6, 0x20}, {6, 0x02, 5, 'a'}, {5, 0x01, 1, 0}, {3, 0x36, 1, 't', 1, 'e', 1, 'x'}, {3, 0x06, 1, 't', 1, 'e', 7}} {
		if _, err := decodeBin(bad); err == nil {
			t.Errorf("decodeBin(% x): no error", bad)
		}
	}
}
