// wsactor-channel.js: the browser client of wsactor's channels protocol,
// version 1 (docs/channels-protocol.md). One dependency-free ES module; a Go
// server serves it with channel.ClientHandler().
//
//   import {Socket, Presence} from '/wsactor/wsactor-channel.js';
//   const socket = new Socket('/ws', {params: {token}});
//   socket.connect();
//   const room = socket.channel('room:lobby', {history: 50});
//   room.on('msg', (data, {offset}) => show(data));
//   await room.join();
//   await room.push('msg', {text: 'hi'});
//
// Payloads are JSON values or bytes: push a Uint8Array (or an ArrayBuffer,
// or a view) to send bytes; bytes arrive as a Uint8Array. With
// new Socket(url, {encoding: 'binary'}) every message travels in the
// protocol's compact binary encoding, bytes payloads as raw bytes.
//
// It also runs under Node 20+ given a WebSocket implementation:
// new Socket(url, {WebSocket: require('ws')}).

/** The WebSocket subprotocol of the JSON encoding (the default). */
export const SUBPROTOCOL = 'wsactor.channel.v1.json';

/** The WebSocket subprotocol of the binary encoding (new Socket(url, {encoding: 'binary'})). */
export const SUBPROTOCOL_BINARY = 'wsactor.channel.v1.bin';

// Close codes after which the socket does not reconnect by itself
// (docs/channels-protocol.md, "Close codes").
const FINAL_CLOSE_CODES = new Set([1000, 1003, 1008, 1009, 4400, 4429]);

// Join error codes worth trying again later; any other refusal is final.
const TRANSIENT_JOIN_CODES = new Set(['timeout', 'unavailable', 'rate_limited', 'already_joined', 'internal']);

const OPEN = 1; // WebSocket.OPEN, the same in every implementation

/**
 * ChannelError is how every failure reaches the application: code is the
 * protocol's error code (for example 'unauthorized', 'rate_limited'), or a
 * local one: 'timeout', 'disconnected', 'buffer_full', 'not_joined', 'left'.
 */
export class ChannelError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'ChannelError';
    this.code = code;
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter;
  }
}

function errorFromReply(e) {
  const code = (e && e.code) || 'error';
  return new ChannelError(code, (e && e.message) || code, { retryAfter: e && e.retry_after });
}

// --- payloads and the binary encoding ------------------------------------
// (docs/channels-protocol.md, "Payloads" and "Binary encoding")

const utf8Encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: names and payloads are as sent.
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // names
const utf8Lax = new TextDecoder('utf-8', { ignoreBOM: true }); // JSON, as lenient as encoding/json

// isBytes reports whether v is a bytes payload: an ArrayBuffer or a view of
// one (Uint8Array, any typed array, DataView, Node's Buffer).
function isBytes(v) {
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v) || Object.prototype.toString.call(v) === '[object ArrayBuffer]';
}

// toBytes returns the Uint8Array view of a bytes payload (no copy).
function toBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(v);
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

// base64Encode returns the standard base64 of bytes, with padding.
function base64Encode(bytes) {
  const n = bytes.length;
  const chunks = [];
  let out = '';
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64[v >> 18] + B64[(v >> 12) & 63] + B64[(v >> 6) & 63] + B64[v & 63];
    if (out.length >= 8192) {
      chunks.push(out);
      out = '';
    }
  }
  if (n - i === 1) {
    const v = bytes[i] << 16;
    out += B64[v >> 18] + B64[(v >> 12) & 63] + '==';
  } else if (n - i === 2) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64[v >> 18] + B64[(v >> 12) & 63] + B64[(v >> 6) & 63] + '=';
  }
  chunks.push(out);
  return chunks.join('');
}

// base64Decode parses standard base64 with padding (as encoding/json writes
// []byte); it throws on anything else.
function base64Decode(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0) throw new Error('base64: bad length');
  let pad = 0;
  if (s.endsWith('==')) pad = 2;
  else if (s.endsWith('=')) pad = 1;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = s.charCodeAt(i + k);
      let d;
      if (c === 61 && i + k >= s.length - pad) d = 0; // '=' of the padding
      else if (c >= 128 || (d = B64_INDEX[c]) < 0) throw new Error('base64: bad character at ' + (i + k));
      v = (v << 6) | d;
    }
    out[o++] = v >> 16;
    if (o < out.length) out[o++] = (v >> 8) & 255;
    if (o < out.length) out[o++] = v & 255;
  }
  return out;
}

const TYPE_CODES = { join: 1, leave: 2, push: 3, reply: 4, ping: 5, event: 6, presence_state: 7, presence_diff: 8, left: 9 };
const TYPE_NAMES = ['', 'join', 'leave', 'push', 'reply', 'ping', 'event', 'presence_state', 'presence_diff', 'left'];
const F_REF = 0x01;
const F_TOPIC = 0x02;
const F_EVENT = 0x04;
const F_OFFSET = 0x08;
const F_DATA = 0x10;
const F_DATA_JSON = 0x20;
const F_REST = 0x40;
const F_RESERVED = 0x80;
// The fields the header carries; every other one goes in rest, which lists
// the known ones in the order the Go server writes them.
const HEADER_FIELDS = new Set(['t', 'ref', 'topic', 'event', 'offset', 'data', 'data_b64']);
const REST_ORDER = ['status', 'error', 'params', 'recover', 'history', 'reason', 'state', 'joins', 'leaves'];

// uvarintLen and putUvarint write unsigned LEB128 numbers up to 2^53-1
// with arithmetic, not 32-bit bitwise operators.
function uvarintLen(v) {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function putUvarint(buf, at, v) {
  while (v >= 128) {
    buf[at++] = (v % 128) + 128;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

function checkUint(what, v) {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`wsactor-channel: ${what} must be an integer in 0..2^53-1, got ${v}`);
}

// encodeBinary returns msg (the JSON encoding's object; data may be a
// bytes payload) in the binary encoding.
function encodeBinary(msg) {
  const code = TYPE_CODES[msg.t];
  if (!code) throw new TypeError('wsactor-channel: cannot encode message type ' + msg.t);
  let flags = 0;
  let size = 2;
  let topic, event, data, rest;
  if (msg.ref) {
    checkUint('ref', msg.ref);
    flags |= F_REF;
    size += uvarintLen(msg.ref);
  }
  if (typeof msg.topic === 'string' && msg.topic !== '') {
    topic = utf8Encoder.encode(msg.topic);
    flags |= F_TOPIC;
    size += uvarintLen(topic.length) + topic.length;
  }
  if (typeof msg.event === 'string' && msg.event !== '') {
    event = utf8Encoder.encode(msg.event);
    flags |= F_EVENT;
    size += uvarintLen(event.length) + event.length;
  }
  if (msg.offset) {
    checkUint('offset', msg.offset);
    flags |= F_OFFSET;
    size += uvarintLen(msg.offset);
  }
  if (msg.data !== undefined) {
    if (isBytes(msg.data)) {
      data = toBytes(msg.data);
      flags |= F_DATA;
    } else {
      const j = JSON.stringify(msg.data);
      if (j !== undefined) {
        data = utf8Encoder.encode(j);
        flags |= F_DATA | F_DATA_JSON;
      }
    }
    if (data) size += uvarintLen(data.length) + data.length;
  }
  const r = {};
  let any = false;
  const keys = REST_ORDER.concat(Object.keys(msg).filter((k) => !HEADER_FIELDS.has(k) && !REST_ORDER.includes(k)));
  for (const k of keys) {
    if (msg[k] !== undefined) {
      r[k] = msg[k];
      any = true;
    }
  }
  if (any) {
    rest = utf8Encoder.encode(JSON.stringify(r));
    flags |= F_REST;
    size += uvarintLen(rest.length) + rest.length;
  }
  const buf = new Uint8Array(size);
  buf[0] = code;
  buf[1] = flags;
  let at = 2;
  const put = (b) => {
    at = putUvarint(buf, at, b.length);
    buf.set(b, at);
    at += b.length;
  };
  if (flags & F_REF) at = putUvarint(buf, at, msg.ref);
  if (topic) put(topic);
  if (event) put(event);
  if (flags & F_OFFSET) at = putUvarint(buf, at, msg.offset);
  if (data) put(data);
  if (rest) put(rest);
  return buf;
}

// decodeBinary parses one message in the binary encoding into the JSON
// encoding's object, a bytes payload as a Uint8Array (a copy). It throws on
// a malformed message: an unknown type, a reserved flag, a field cut short,
// bytes left over, a number above 2^53-1, a rest that is not a JSON object.
function decodeBinary(input) {
  const p = toBytes(input);
  if (p.length < 2) throw new Error('shorter than its header');
  const code = p[0];
  const flags = p[1];
  if (code === 0 || code >= TYPE_NAMES.length) throw new Error('unknown message type code ' + code);
  if (flags & F_RESERVED || (flags & F_DATA_JSON && !(flags & F_DATA))) throw new Error('invalid flags');
  let at = 2;
  const uvarint = () => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= p.length) throw new Error('varint cut short');
      const b = p[at++];
      v += (b & 127) * mul;
      if (b < 128) {
        if (v > Number.MAX_SAFE_INTEGER) throw new Error('number above 2^53-1');
        return v;
      }
      mul *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  };
  const bytes = () => {
    const n = uvarint();
    if (n > p.length - at) throw new Error('field longer than the message');
    const b = p.subarray(at, at + n);
    at += n;
    return b;
  };
  const m = { t: TYPE_NAMES[code] };
  if (flags & F_REF) m.ref = uvarint();
  if (flags & F_TOPIC) m.topic = utf8Strict.decode(bytes());
  if (flags & F_EVENT) m.event = utf8Strict.decode(bytes());
  if (flags & F_OFFSET) m.offset = uvarint();
  if (flags & F_DATA) {
    const d = bytes();
    m.data = flags & F_DATA_JSON ? JSON.parse(utf8Lax.decode(d)) : d.slice();
  }
  if (flags & F_REST) {
    const raw = bytes();
    if (raw[0] !== 0x7b) throw new Error('rest is not a JSON object');
    const r = JSON.parse(utf8Lax.decode(raw));
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new Error('rest is not a JSON object');
    for (const k of Object.keys(r)) if (!HEADER_FIELDS.has(k)) m[k] = r[k];
  }
  if (at !== p.length) throw new Error('bytes after the last field');
  return m;
}

// encodeJSON returns msg in the JSON encoding: a bytes payload is data_b64.
function encodeJSON(msg) {
  if (msg.data === undefined || !isBytes(msg.data)) return JSON.stringify(msg);
  const { data, ...rest } = msg;
  rest.data_b64 = base64Encode(toBytes(data));
  return JSON.stringify(rest);
}

// withBytes returns a history entry (or message) whose data_b64 is turned
// into its data, a Uint8Array; it throws on bad base64.
function withBytes(m) {
  if (!m || typeof m !== 'object' || typeof m.data_b64 !== 'string') return m;
  const { data_b64: b64, ...rest } = m;
  rest.data = base64Decode(b64);
  return rest;
}

/** Not part of the API: the codecs, for the unit tests. */
export const _codec = { encodeBinary, decodeBinary, encodeJSON, base64Encode, base64Decode };

// backoff returns the delay before try number attempt (0-based): full
// jitter over an exponentially growing cap, min * 2^attempt, at most max.
function backoff(attempt, { min, max }) {
  const cap = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * cap);
}

// hook is a set of callbacks; add returns the function that removes one.
function hook() {
  const cbs = new Set();
  return {
    add(cb) {
      cbs.add(cb);
      return () => cbs.delete(cb);
    },
    // call runs each callback; a throwing callback does not stop the others.
    call(log, ...args) {
      for (const cb of [...cbs]) {
        try {
          cb(...args);
        } catch (err) {
          log('error', 'callback threw', err);
        }
      }
    },
  };
}

/**
 * Socket is one WebSocket connection to a channel.Hub, reconnecting by
 * itself, on which any number of Channels are joined.
 */
export class Socket {
  constructor(url, opts = {}) {
    this.url = url;
    const encoding = opts.encoding ?? 'json';
    if (encoding !== 'json' && encoding !== 'binary') throw new Error(`wsactor-channel: encoding must be 'json' or 'binary', not ${encoding}`);
    this._opts = {
      encoding,
      params: opts.params,
      timeout: opts.timeout ?? 10000,
      heartbeatInterval: opts.heartbeatInterval ?? 25000,
      bufferSize: opts.bufferSize ?? 100,
      reconnect: { min: 250, max: 10000, ...(opts.reconnect || {}) },
      WebSocket: opts.WebSocket || globalThis.WebSocket,
    };
    if (!this._opts.WebSocket) throw new Error('wsactor-channel: no WebSocket implementation; pass opts.WebSocket');
    this._logger = typeof opts.logger === 'function' ? opts.logger : null;
    this._log = (kind, msg, data) => this._logger && this._logger(kind, msg, data);
    this._ws = null; // the current WebSocket, connecting or open
    this._binary = false; // the open connection speaks the binary encoding
    this._ref = 0; // the last ref this side used
    this._pending = new Map(); // ref -> {reply(msg), drop(err)} for this connection
    this._channels = new Map(); // topic -> Channel
    this._buffer = []; // pushes waiting for a joined channel, oldest first
    this._wanted = false; // connect() called and disconnect() not since
    this._attempt = 0; // failed connects since the last open
    this._reconnectTimer = null;
    this._openTimer = null;
    this._heartbeatTimer = null;
    this._hooks = { open: hook(), close: hook(), error: hook() };
  }

  /** Opens the connection (and keeps it open: reconnects until disconnect()). */
  connect() {
    this._wanted = true;
    if (this._ws || this._reconnectTimer) return;
    this._open();
  }

  /** Closes the connection for good: no reconnect until connect() again. */
  disconnect(code = 1000, reason = '') {
    this._wanted = false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    const ws = this._ws;
    if (ws) {
      try {
        ws.close(code, reason);
      } catch (err) {
        ws.close();
      }
      this._closed(ws, { code, reason, wasClean: true });
    }
  }

  /** Returns whether the WebSocket is open. */
  isConnected() {
    return !!this._ws && this._ws.readyState === OPEN;
  }

  /** Calls cb() each time the connection opens. Returns the unsubscribe function. */
  onOpen(cb) {
    return this._hooks.open.add(cb);
  }

  /** Calls cb({code, reason, reconnect}) each time the connection closes. */
  onClose(cb) {
    return this._hooks.close.add(cb);
  }

  /** Calls cb(error) on a WebSocket error. */
  onError(cb) {
    return this._hooks.error.add(cb);
  }

  /**
   * Returns the Channel of topic, making it on first use. opts.params (an
   * object, or a function returning one at each join) is sent with each
   * join; opts.history asks for that many past events on the first join.
   */
  channel(topic, opts = {}) {
    let ch = this._channels.get(topic);
    if (!ch) {
      ch = new Channel(this, topic, opts);
      this._channels.set(topic, ch);
    }
    return ch;
  }

  // --- the connection ---------------------------------------------------

  _endpoint() {
    let base = this.url;
    if (typeof location !== 'undefined' && !/^wss?:\/\//i.test(base)) {
      // A relative or http(s) address: the page's host, ws:// or wss://.
      const u = new URL(base, location.href);
      u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
      base = u.href;
    }
    const url = new URL(base);
    const p = typeof this._opts.params === 'function' ? this._opts.params() : this._opts.params;
    for (const [k, v] of Object.entries(p || {})) {
      if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    }
    return url.href;
  }

  _open() {
    let ws;
    try {
      ws = new this._opts.WebSocket(this._endpoint(), [this._subprotocol()]);
      ws.binaryType = 'arraybuffer';
    } catch (err) {
      this._log('error', 'cannot open WebSocket', err);
      this._hooks.error.call(this._log, err);
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._log('connect', 'connecting', { attempt: this._attempt });
    // Handlers ignore a WebSocket that is no longer the current one.
    ws.onopen = () => ws === this._ws && this._opened(ws);
    ws.onclose = (e) => ws === this._ws && this._closed(ws, e);
    ws.onerror = (e) => ws === this._ws && this._hooks.error.call(this._log, e);
    ws.onmessage = (e) => ws === this._ws && this._message(ws, e.data);
    // A connect that hangs is given up after the timeout, like a lost one.
    this._openTimer = setTimeout(() => {
      if (ws === this._ws && ws.readyState !== OPEN) this._abort(ws, 'connect timeout');
    }, this._opts.timeout);
  }

  _subprotocol() {
    return this._opts.encoding === 'binary' ? SUBPROTOCOL_BINARY : SUBPROTOCOL;
  }

  _opened(ws) {
    clearTimeout(this._openTimer);
    // The encoding is the one the server answered with: a server answering
    // none speaks JSON (docs/channels-protocol.md, "Negotiation"). A
    // WebSocket implementation that does not tell is taken at our word.
    const offered = this._subprotocol();
    const chosen = ws.protocol;
    if (typeof chosen === 'string') {
      this._binary = chosen === SUBPROTOCOL_BINARY;
      if (chosen !== offered && (chosen || this._opts.encoding === 'binary')) {
        this._log('warn', `offered ${offered}, server chose ${chosen || 'none'}: speaking ${this._binary ? 'binary' : 'JSON'}`);
      }
    } else {
      this._binary = this._opts.encoding === 'binary';
    }
    this._attempt = 0;
    this._log('open', 'connected');
    this._scheduleHeartbeat(ws);
    this._hooks.open.call(this._log);
    for (const ch of this._channels.values()) ch._socketOpened();
  }

  // _abort drops ws as if it had closed abnormally, and reconnects.
  _abort(ws, why) {
    this._log('warn', why);
    try {
      ws.close(4000, why);
    } catch (err) {
      /* already closing */
    }
    this._closed(ws, { code: 1006, reason: why, wasClean: false });
  }

  _closed(ws, e) {
    if (ws !== this._ws) return;
    this._ws = null;
    ws.onopen = ws.onclose = ws.onmessage = null;
    ws.onerror = () => {}; // Node's ws throws an error event nobody listens to
    clearTimeout(this._openTimer);
    clearTimeout(this._heartbeatTimer);
    const code = e && e.code;
    const reason = (e && e.reason) || '';
    // Refs belong to a connection: nothing sent on this one will be answered.
    const pending = [...this._pending.values()];
    this._pending.clear();
    const gone = new ChannelError('disconnected', `connection closed (${code})`);
    for (const p of pending) p.drop(gone);
    if (FINAL_CLOSE_CODES.has(code)) this._wanted = false;
    const reconnect = this._wanted;
    this._log('close', `closed ${code} ${reason}`, { reconnect });
    for (const ch of this._channels.values()) ch._socketClosed();
    if (!reconnect) {
      // Nothing will be sent any more: fail what waits to be.
      this._failBuffer(() => true, new ChannelError('disconnected', `connection closed (${code}) ${reason}`.trim()));
    }
    this._hooks.close.call(this._log, { code, reason, reconnect });
    if (reconnect) this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (!this._wanted || this._reconnectTimer) return;
    const delay = backoff(this._attempt++, this._opts.reconnect);
    this._log('reconnect', `reconnecting in ${delay} ms`, { delay });
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (this._wanted && !this._ws) this._open();
    }, delay);
  }

  // The heartbeat: a ping every heartbeatInterval; a ping not answered
  // within the timeout means the connection is dead.
  _scheduleHeartbeat(ws) {
    const every = this._opts.heartbeatInterval;
    if (!every || every <= 0) return;
    clearTimeout(this._heartbeatTimer);
    this._heartbeatTimer = setTimeout(() => {
      if (ws !== this._ws) return;
      this._request({ t: 'ping' }, this._opts.timeout).then(
        () => ws === this._ws && this._scheduleHeartbeat(ws),
        (err) => {
          if (ws === this._ws && err.code === 'timeout') this._abort(ws, 'heartbeat timeout');
        },
      );
    }, every);
  }

  // --- messages ---------------------------------------------------------

  _nextRef() {
    this._ref = this._ref >= Number.MAX_SAFE_INTEGER ? 1 : this._ref + 1;
    return this._ref;
  }

  // _send writes one message on the open connection; false if there is none.
  _send(msg) {
    if (!this.isConnected()) return false;
    this._log('send', msg.t, msg);
    this._ws.send(this._binary ? encodeBinary(msg) : encodeJSON(msg));
    return true;
  }

  // _call sends msg with a fresh ref (set on msg) and calls done(err, data)
  // once, synchronously when the reply is handled: with the reply's data, or
  // its error, 'timeout' or 'disconnected'. A reply after the timeout finds
  // no entry and is dropped.
  _call(msg, timeout, done) {
    const ref = this._nextRef();
    msg.ref = ref;
    if (!this._send(msg)) {
      done(new ChannelError('disconnected', 'not connected'));
      return;
    }
    const timer = setTimeout(() => {
      if (this._pending.get(ref) !== entry) return;
      this._pending.delete(ref);
      done(new ChannelError('timeout', `no reply to ${msg.t} within ${timeout} ms`));
    }, timeout);
    const entry = {
      reply: (m) => {
        clearTimeout(timer);
        if (m.status === 'ok') done(null, m.data);
        else done(errorFromReply(m.error));
      },
      drop: (err) => {
        clearTimeout(timer);
        done(err);
      },
    };
    this._pending.set(ref, entry);
  }

  // _request is _call as a promise.
  _request(msg, timeout) {
    return new Promise((resolve, reject) => this._call(msg, timeout, (err, data) => (err ? reject(err) : resolve(data))));
  }

  // _decode returns the message raw holds in the connection's encoding, with
  // a bytes payload as a Uint8Array, or undefined (logged) if it holds none.
  _decode(raw) {
    const text = typeof raw === 'string';
    if (text === this._binary) {
      this._log('warn', `ignoring a ${text ? 'text' : 'binary'} message on a ${this._binary ? 'binary' : 'JSON'} connection`);
      return undefined;
    }
    try {
      if (!text) {
        if (!isBytes(raw)) throw new Error('unreadable binary message (set binaryType to arraybuffer)');
        return decodeBinary(raw);
      }
      const m = JSON.parse(raw);
      return m && typeof m === 'object' ? withBytes(m) : undefined;
    } catch (err) {
      this._log('warn', `ignoring a malformed ${text ? 'JSON' : 'binary'} message`, { error: String(err), message: raw });
      return undefined;
    }
  }

  _message(ws, raw) {
    const m = this._decode(raw);
    if (!m) return;
    this._log('receive', m.t, m);
    if (m.t === 'reply') {
      const p = this._pending.get(m.ref);
      if (p) {
        this._pending.delete(m.ref);
        p.reply(m);
      }
      return;
    }
    const ch = typeof m.topic === 'string' ? this._channels.get(m.topic) : undefined;
    if (!ch) return; // not a topic of ours
    switch (m.t) {
      case 'event':
        ch._event(m);
        break;
      case 'push':
        ch._serverPush(ws, m);
        break;
      case 'presence_state':
      case 'presence_diff':
        ch._presence(m);
        break;
      case 'left':
        ch._left(m.reason);
        break;
      default: // an unknown type: a newer server; ignore it
    }
  }

  // --- the offline buffer -----------------------------------------------

  // _enqueue keeps a push until its channel is joined; when the buffer is
  // full the oldest push is rejected to make room.
  _enqueue(item) {
    const max = this._opts.bufferSize;
    if (max <= 0) {
      item.fail(new ChannelError('buffer_full', 'offline buffer disabled'));
      return;
    }
    while (this._buffer.length >= max) {
      const oldest = this._buffer.shift();
      oldest.fail(new ChannelError('buffer_full', `offline buffer full (${max} messages)`));
    }
    this._buffer.push(item);
  }

  _dequeue(item) {
    const i = this._buffer.indexOf(item);
    if (i >= 0) this._buffer.splice(i, 1);
  }

  // _flush sends the buffered pushes of ch, in order.
  _flush(ch) {
    const mine = this._buffer.filter((it) => it.channel === ch);
    this._buffer = this._buffer.filter((it) => it.channel !== ch);
    for (const it of mine) it.send();
  }

  _failBuffer(match, err) {
    const out = this._buffer.filter(match);
    this._buffer = this._buffer.filter((it) => !match(it));
    for (const it of out) it.fail(err);
  }
}

/**
 * Channel is one topic on a Socket: join it, receive its events, push to
 * it. After a reconnect it joins again by itself with `recover`, so that
 * the events missed meanwhile arrive, once each, in order.
 */
export class Channel {
  constructor(socket, topic, opts = {}) {
    this.socket = socket;
    this.topic = topic;
    this.params = opts.params;
    this._historySize = opts.history || 0;
    /** 'closed' | 'joining' | 'joined' | 'leaving' | 'errored' */
    this.state = 'closed';
    this._log = socket._log;
    this._wanted = false; // join() called and leave() not since
    this._joinRef = 0; // ref of the join in flight
    this._joinWaiter = null; // {resolve, reject, timer} of join()'s promise
    this._joinPromise = null;
    this._retryTimer = null;
    this._attempt = 0;
    this._epoch = null; // position: epoch and highest offset applied
    this._offset = 0;
    this._handlers = new Map(); // event ('*' for all) -> Set of callbacks
    this._pushHandlers = new Map(); // event ('*' for all) -> callback
    this._presenceListeners = new Set();
    this._hooks = { join: hook(), left: hook(), error: hook() };
  }

  /**
   * Joins the topic. Resolves with the join reply's data ({epoch, offset,
   * recovered, reason, history, reply}); rejects with a ChannelError whose
   * code is the server's ('unauthorized', ...) or 'timeout'. Calling it
   * again while joining or joined returns the same promise.
   */
  join({ timeout } = {}) {
    if (this._wanted && (this._joinWaiter || this.state === 'joined')) return this._joinPromise;
    const first = !this._wanted;
    this._wanted = true;
    if (first) this._attempt = 0;
    this._joinPromise = new Promise((resolve, reject) => {
      const t = timeout ?? this.socket._opts.timeout;
      const timer = setTimeout(() => this._settleJoin(null, new ChannelError('timeout', `join ${this.topic}: no reply within ${t} ms`)), t);
      this._joinWaiter = { resolve, reject, timer };
    });
    this._joinPromise.catch(() => {}); // an unobserved failure is not an unhandled rejection
    // Send a join unless one is on its way or a retry is scheduled.
    if (this.state !== 'joining' && !this._retryTimer) {
      this.state = 'joining';
      if (this.socket.isConnected()) this._sendJoin();
    }
    return this._joinPromise;
  }

  /** Leaves the topic (no rejoin any more). Resolves once the server answered or the timeout passed. */
  leave({ timeout } = {}) {
    const wasIn = this.state === 'joined' || this.state === 'joining';
    this._wanted = false;
    this._joinRef = 0; // a join reply still on its way is ignored
    this._joinPromise = null;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._settleJoin(null, new ChannelError('left', `left ${this.topic}`));
    this.socket._failBuffer((it) => it.channel === this, new ChannelError('left', `left ${this.topic}`));
    const done = () => {
      if (this._wanted) return; // join() was called again meanwhile
      this.state = 'closed';
      this._hooks.left.call(this._log, { reason: 'leave' });
    };
    if (!wasIn || !this.socket.isConnected()) {
      done();
      return Promise.resolve();
    }
    this.state = 'leaving';
    const t = timeout ?? this.socket._opts.timeout;
    return this.socket._request({ t: 'leave', topic: this.topic }, t).then(done, done);
  }

  /**
   * Pushes event with data to the topic: a JSON value, or bytes (a
   * Uint8Array, ArrayBuffer or view; bytes held in the offline buffer are
   * copied). Resolves with the reply's data (a Uint8Array if bytes);
   * rejects with a ChannelError: the server's code, 'timeout' (counted from
   * this call), 'disconnected' (the connection dropped before the answer),
   * 'buffer_full', 'left' or 'not_joined'. A push made while the channel is
   * not joined waits in the socket's offline buffer until it is.
   */
  push(event, data, { timeout } = {}) {
    if (!this._wanted) return Promise.reject(new ChannelError('not_joined', `push to ${this.topic} before join()`));
    const t = timeout ?? this.socket._opts.timeout;
    if (data !== undefined && isBytes(data)) data = toBytes(data);
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn, v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.socket._dequeue(item);
        fn(v);
      };
      const item = {
        channel: this,
        fail: (err) => settle(reject, err),
        send: () => {
          if (settled) return;
          const msg = { t: 'push', topic: this.topic, event };
          if (data !== undefined) msg.data = data;
          // The timeout already runs; the request's own one is a backstop.
          this.socket._request(msg, t + 1000).then((d) => settle(resolve, d), (err) => settle(reject, err));
        },
      };
      const timer = setTimeout(() => settle(reject, new ChannelError('timeout', `push ${event} to ${this.topic}: no reply within ${t} ms`)), t);
      if (this.state === 'joined' && this.socket.isConnected()) item.send();
      else {
        // Sent later: keep the bytes as they are now.
        if (data instanceof Uint8Array) data = data.slice();
        this.socket._enqueue(item);
      }
    });
  }

  /**
   * Calls cb(data, {event, topic, offset, history}) for each event named
   * event ('*': every event), including those replayed from a join's
   * history (history: true). data is the parsed JSON, or a Uint8Array for a
   * bytes payload. Returns the unsubscribe function.
   */
  on(event, cb) {
    let set = this._handlers.get(event);
    if (!set) this._handlers.set(event, (set = new Set()));
    set.add(cb);
    return () => set.delete(cb);
  }

  /**
   * Answers server pushes named event ('*': any without a handler of its
   * own) with cb(data, {event, topic}) (data a Uint8Array for bytes): what
   * it returns (or its promise resolves with) is the ok reply, bytes if it
   * is a Uint8Array or ArrayBuffer; what it throws is an error reply with
   * err.code (default 'error'). Returns the function removing it.
   */
  onPush(event, cb) {
    this._pushHandlers.set(event, cb);
    return () => {
      if (this._pushHandlers.get(event) === cb) this._pushHandlers.delete(event);
    };
  }

  /** Calls cb(reply) after each successful join, before its history is delivered. */
  onJoin(cb) {
    return this._hooks.join.add(cb);
  }

  /** Calls cb({reason}) when the membership ends: 'leave', or the server's 'removed', 'stopped', 'shutdown'. */
  onLeft(cb) {
    return this._hooks.left.add(cb);
  }

  /** Calls cb(error) when a (re)join is refused for good. */
  onError(cb) {
    return this._hooks.error.add(cb);
  }

  /** The last position applied: {epoch, offset}; epoch is null before the first join. */
  position() {
    return { epoch: this._epoch, offset: this._offset };
  }

  // --- joining ----------------------------------------------------------

  _sendJoin() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (!this._wanted || !this.socket.isConnected()) return;
    this.state = 'joining';
    const msg = { t: 'join', topic: this.topic };
    const params = typeof this.params === 'function' ? this.params() : this.params;
    if (params !== undefined) msg.params = params;
    if (this._epoch !== null) msg.recover = { epoch: this._epoch, offset: this._offset };
    // Sent with recover too: it is what the server answers with when the
    // recovery fails (a new epoch, expired events), so the app can refill.
    if (this._historySize > 0) msg.history = this._historySize;
    // The reply is handled synchronously: the events that follow it on the
    // connection must find the channel joined.
    let ref = 0;
    this.socket._call(msg, this.socket._opts.timeout, (err, data) => {
      if (ref !== this._joinRef) return; // a join given up (leave, reconnect)
      if (err) this._joinFailed(err);
      else this._joined(data || {});
    });
    ref = msg.ref;
    this._joinRef = ref;
  }

  _joined(reply) {
    this._joinRef = 0;
    this._attempt = 0;
    this.state = 'joined';
    // A new epoch, or a position the topic never reached: start over.
    if (reply.epoch !== this._epoch || reply.reason === 'ahead') this._offset = 0;
    this._epoch = reply.epoch ?? null;
    const history = [];
    for (const h of Array.isArray(reply.history) ? reply.history : []) {
      try {
        history.push(withBytes(h));
      } catch (err) {
        this._log('warn', `join ${this.topic}: dropping a history event with bad data_b64`, h);
      }
    }
    const result = {
      epoch: this._epoch,
      offset: reply.offset || 0,
      recovered: !!reply.recovered,
      reason: reply.reason,
      history,
      reply: reply.reply,
    };
    this._log('join', `joined ${this.topic}`, result);
    for (const l of this._presenceListeners) l.joined();
    this._hooks.join.call(this._log, result);
    for (const h of history) this._apply(h.event, h.data, h.offset, true);
    // Everything up to the offset of the join is now accounted for.
    if (result.offset > this._offset) this._offset = result.offset;
    this._settleJoin(result, null);
    this.socket._flush(this);
  }

  _joinFailed(err) {
    this._joinRef = 0;
    this.state = 'errored';
    this._log('error', `join ${this.topic} failed: ${err.code}`, err);
    if (err.code === 'disconnected') return; // rejoined when the socket opens
    if (err.code === 'timeout' && this.socket.isConnected()) {
      // The join may still take effect: leave, so the next try is not already_joined.
      this.socket._request({ t: 'leave', topic: this.topic }, this.socket._opts.timeout).catch(() => {});
    }
    if (TRANSIENT_JOIN_CODES.has(err.code)) {
      this._settleJoin(null, err);
      let delay = backoff(this._attempt++, this.socket._opts.reconnect);
      if (err.retryAfter > delay) delay = err.retryAfter;
      this._retryTimer = setTimeout(() => this._sendJoin(), delay);
      return;
    }
    // Refused for good (unauthorized, topic_full, ...).
    this._wanted = false;
    this._joinPromise = null;
    this._settleJoin(null, err);
    this.socket._failBuffer((it) => it.channel === this, err);
    this._hooks.error.call(this._log, err);
  }

  _settleJoin(result, err) {
    const w = this._joinWaiter;
    if (!w) return;
    this._joinWaiter = null;
    clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve(result);
  }

  _socketOpened() {
    if (this._wanted) this._sendJoin();
  }

  _socketClosed() {
    this._joinRef = 0;
    // Still wanted: 'errored' until the socket opens again and it rejoins.
    if (this.state !== 'closed' && this.state !== 'leaving') this.state = this._wanted ? 'errored' : 'closed';
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  // _left is the server ending the membership. After 'stopped' or
  // 'shutdown' the channel joins again (at once, or once reconnected);
  // after 'removed' it stays out.
  _left(reason) {
    if (this.state !== 'joined' && this.state !== 'leaving') return;
    this.state = 'closed';
    this._hooks.left.call(this._log, { reason });
    if (reason === 'removed') {
      this._wanted = false;
      this._joinPromise = null;
      this.socket._failBuffer((it) => it.channel === this, new ChannelError('left', `removed from ${this.topic}`));
    } else if (this._wanted && reason !== 'shutdown') {
      this._retryTimer = setTimeout(() => this._sendJoin(), backoff(this._attempt++, this.socket._opts.reconnect));
    }
  }

  // --- incoming ---------------------------------------------------------

  _event(m) {
    if (this.state !== 'joined') return;
    this._apply(m.event, m.data, m.offset, false);
  }

  // _apply delivers one event unless its offset shows it was applied already.
  _apply(event, data, offset, fromHistory) {
    if (typeof offset === 'number' && offset > 0) {
      if (offset <= this._offset) return; // a duplicate
      this._offset = offset;
    }
    const meta = { event, topic: this.topic, offset: typeof offset === 'number' ? offset : undefined, history: fromHistory };
    for (const key of [event, '*']) {
      const set = this._handlers.get(key);
      if (!set) continue;
      for (const cb of [...set]) {
        try {
          cb(data, meta);
        } catch (err) {
          this._log('error', `handler of ${event} threw`, err);
        }
      }
    }
  }

  _presence(m) {
    if (this.state !== 'joined') return;
    for (const l of this._presenceListeners) l.message(m);
  }

  // _serverPush runs the onPush handler and, when the push has a ref,
  // answers on the connection it came from.
  _serverPush(ws, m) {
    if (this.state !== 'joined') return;
    const cb = this._pushHandlers.get(m.event) || this._pushHandlers.get('*');
    const answer = (msg) => {
      if (!m.ref || ws !== this.socket._ws) return; // no answer wanted, or a connection gone
      this.socket._send({ t: 'reply', ref: m.ref, topic: this.topic, ...msg });
    };
    const fail = (err) => {
      const code = (err && typeof err.code === 'string' && err.code) || 'error';
      answer({ status: 'error', error: { code, message: String((err && err.message) || err) } });
    };
    if (!cb) {
      fail(new ChannelError('no_handler', `no handler for push ${m.event}`));
      return;
    }
    let out;
    try {
      out = cb(m.data, { event: m.event, topic: this.topic });
    } catch (err) {
      fail(err);
      return;
    }
    Promise.resolve(out).then((data) => answer(data === undefined ? { status: 'ok' } : { status: 'ok', data }), fail);
  }
}

/**
 * Presence follows who is in a channel's topic (which must track
 * presence): a key (user) has one meta {id, meta} per connection.
 */
export class Presence {
  constructor(channel) {
    this.channel = channel;
    this._state = new Map(); // key -> array of {id, meta}
    this._synced = false; // a presence_state arrived since the last join
    this._pending = []; // diffs that came before the state
    this._hooks = { join: hook(), leave: hook(), sync: hook() };
    this._log = channel._log;
    channel._presenceListeners.add({
      joined: () => {
        this._synced = false;
        this._pending = [];
      },
      message: (m) => this._message(m),
    });
  }

  /** Returns who is there: [{key, metas: [{id, meta}, ...]}, ...]. */
  list() {
    return [...this._state].map(([key, metas]) => ({ key, metas: metas.slice() }));
  }

  /** Calls cb(key, current, newMetas): current is the key's {metas} before (undefined if it is new). */
  onJoin(cb) {
    return this._hooks.join.add(cb);
  }

  /** Calls cb(key, remaining, leftMetas): remaining is {metas} after (empty metas: the key left). */
  onLeave(cb) {
    return this._hooks.leave.add(cb);
  }

  /** Calls cb() after the state or a diff was applied. */
  onSync(cb) {
    return this._hooks.sync.add(cb);
  }

  _message(m) {
    if (m.t === 'presence_state') {
      this._syncState(m.state || {});
      this._synced = true;
      const pending = this._pending;
      this._pending = [];
      for (const d of pending) this._syncDiff(d.joins || {}, d.leaves || {});
      this._hooks.sync.call(this._log);
    } else if (m.t === 'presence_diff') {
      if (!this._synced) {
        this._pending.push(m);
        return;
      }
      this._syncDiff(m.joins || {}, m.leaves || {});
      this._hooks.sync.call(this._log);
    }
  }

  // _syncState replaces the state by a full one, telling the joins and
  // leaves it amounts to.
  _syncState(next) {
    const joins = {};
    const leaves = {};
    for (const [key, metas] of this._state) {
      if (!next[key]) leaves[key] = { metas };
    }
    for (const [key, entry] of Object.entries(next)) {
      const metas = (entry && entry.metas) || [];
      const cur = this._state.get(key);
      if (!cur) {
        joins[key] = { metas };
        continue;
      }
      const nextIds = new Set(metas.map((x) => x.id));
      const curIds = new Set(cur.map((x) => x.id));
      const came = metas.filter((x) => !curIds.has(x.id));
      const went = cur.filter((x) => !nextIds.has(x.id));
      if (came.length) joins[key] = { metas: came };
      if (went.length) leaves[key] = { metas: went };
    }
    this._syncDiff(joins, leaves);
  }

  // _syncDiff adds the metas of joins and removes (by id) those of leaves.
  _syncDiff(joins, leaves) {
    for (const [key, entry] of Object.entries(joins)) {
      const add = ((entry && entry.metas) || []).filter((x) => x && x.id !== undefined);
      const cur = this._state.get(key);
      const ids = new Set((cur || []).map((x) => x.id));
      const fresh = add.filter((x) => !ids.has(x.id));
      if (!fresh.length) continue;
      const before = cur ? { metas: cur.slice() } : undefined;
      this._state.set(key, (cur || []).concat(fresh));
      this._hooks.join.call(this._log, key, before, fresh);
    }
    for (const [key, entry] of Object.entries(leaves)) {
      const cur = this._state.get(key);
      if (!cur) continue;
      const gone = new Set(((entry && entry.metas) || []).map((x) => x && x.id));
      const left = cur.filter((x) => gone.has(x.id));
      if (!left.length) continue;
      const remaining = cur.filter((x) => !gone.has(x.id));
      if (remaining.length) this._state.set(key, remaining);
      else this._state.delete(key);
      this._hooks.leave.call(this._log, key, { metas: remaining }, left);
    }
  }
}
