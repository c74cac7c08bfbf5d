package channel

import "encoding/json"

// presence is a topic's presence: for each key (a user, or a connection
// without one) the connections present, in join order. It belongs to the
// topic's actor.
type presence struct {
	keys map[string][]PresenceMeta
}

func (p *presence) join(key string, m PresenceMeta) {
	if p.keys == nil {
		p.keys = map[string][]PresenceMeta{}
	}
	p.keys[key] = append(p.keys[key], m)
}

// leave removes connection id from key and returns its meta.
func (p *presence) leave(key, id string) (PresenceMeta, bool) {
	metas := p.keys[key]
	for i, m := range metas {
		if m.ID == id {
			metas = append(metas[:i:i], metas[i+1:]...)
			if len(metas) == 0 {
				delete(p.keys, key)
			} else {
				p.keys[key] = metas
			}
			return m, true
		}
	}
	return PresenceMeta{}, false
}

// state returns the whole presence in the protocol's shape.
func (p *presence) state() map[string]*PresenceEntry {
	out := make(map[string]*PresenceEntry, len(p.keys))
	for k, metas := range p.keys {
		out[k] = &PresenceEntry{Metas: append([]PresenceMeta(nil), metas...)}
	}
	return out
}

// list returns the presence for Go callers: key to metas.
func (p *presence) list() map[string][]PresenceMeta {
	out := make(map[string][]PresenceMeta, len(p.keys))
	for k, metas := range p.keys {
		out[k] = append([]PresenceMeta(nil), metas...)
	}
	return out
}

func one(key string, m PresenceMeta) map[string]*PresenceEntry {
	return map[string]*PresenceEntry{key: {Metas: []PresenceMeta{m}}}
}

func presenceMeta(id string, meta any) PresenceMeta {
	raw, err := marshalData(meta)
	if err != nil {
		raw = json.RawMessage("null")
	}
	return PresenceMeta{ID: id, Meta: raw}
}
