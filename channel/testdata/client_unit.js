'use strict';
// Unit tests of the browser client channel/client/wsactor-channel.js under
// Node, against fake servers made with the ws package (interop/node's
// node_modules, through NODE_PATH). Run by TestClientJS (client_js_test.go):
//
//   NODE_PATH=interop/node/node_modules node channel/testdata/client_unit.js
//
// Prints one JSON line per check, {"check": name, "ok": bool, ...}, and a
// final {"done": true, "passed": n, "failed": m}; exits 1 if a check failed.
const path = require('path');
const { WebSocketServer, WebSocket } = require('ws');

const CLIENT = path.join(__dirname, '..', 'client', 'wsactor-channel.js');
const STEP = 3000; // bound on every wait for a message or a callback
const SUBPROTOCOL = 'wsactor.channel.v1.json';
const SUBPROTOCOL_BIN = 'wsactor.channel.v1.bin';

// loadClient imports the ES module. Node before 20.19 does not detect ES
// module syntax in a .js file outside a "type": "module" package; a data:
// URL of its source is always a module.
let client;
async function loadClient() {
  if (!client) {
    client = await import(CLIENT).catch(() => {
      const src = require('fs').readFileSync(CLIENT);
      return import('data:text/javascript;base64,' + src.toString('base64'));
    });
  }
  return client;
}

let passed = 0;
let failed = 0;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// check records one assertion: ok, or failed with what was wanted and got.
function check(name, ok, got, want) {
  if (ok) passed++;
  else failed++;
  emit(ok ? { check: name, ok: true } : { check: name, ok: false, got, want });
}

function eq(name, got, want) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  check(name, g === w, got, want);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitFor polls cond until it holds, for at most STEP; it throws (failing
// the test) if it never does.
async function waitFor(cond, what) {
  const deadline = Date.now() + STEP;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(2);
  }
}

const hex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
const unhex = (h) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
// bytesOf describes a payload for comparing: 'bytes:<hex>' for a Uint8Array.
const bytesOf = (v) => (v instanceof Uint8Array ? 'bytes:' + hex(v) : v);

// The test's own binary codec (docs/channels-protocol.md, "Binary
// encoding"), written apart from the client's with BigInt varints, for the
// fake server. Messages are {t, ref, topic, event, offset, data (JSON),
// bin (bytes), ...rest}; decoded ones also carry bigRef, flags and hex.
const BIN_TYPES = ['', 'join', 'leave', 'push', 'reply', 'ping', 'event', 'presence_state', 'presence_diff', 'left'];
const BIN_HEADER = ['t', 'ref', 'topic', 'event', 'offset', 'data', 'bin'];

function tUvarint(v) {
  let x = BigInt(v);
  const out = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return Buffer.from(out);
}

const tField = (b) => Buffer.concat([tUvarint(b.length), Buffer.from(b)]);

function binEncode(m) {
  const parts = [];
  let flags = 0;
  if (m.ref) (flags |= 0x01), parts.push(tUvarint(m.ref));
  if (m.topic) (flags |= 0x02), parts.push(tField(Buffer.from(m.topic)));
  if (m.event) (flags |= 0x04), parts.push(tField(Buffer.from(m.event)));
  if (m.offset) (flags |= 0x08), parts.push(tUvarint(m.offset));
  if (m.bin) (flags |= 0x10), parts.push(tField(m.bin));
  else if (m.data !== undefined) (flags |= 0x30), parts.push(tField(Buffer.from(JSON.stringify(m.data))));
  const rest = {};
  for (const k of Object.keys(m)) if (!BIN_HEADER.includes(k) && m[k] !== undefined) rest[k] = m[k];
  if (Object.keys(rest).length) (flags |= 0x40), parts.push(tField(Buffer.from(JSON.stringify(rest))));
  return Buffer.concat([Buffer.from([BIN_TYPES.indexOf(m.t), flags]), ...parts]);
}

function binDecode(buf) {
  let at = 2;
  const flags = buf[1];
  const m = { t: BIN_TYPES[buf[0]], flags, hex: buf.toString('hex') };
  const uv = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= buf.length) throw new Error('varint cut short');
      const b = buf[at++];
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (b < 0x80) return v;
    }
  };
  const field = () => {
    const n = Number(uv());
    if (at + n > buf.length) throw new Error('field cut short');
    at += n;
    return buf.subarray(at - n, at);
  };
  if (!m.t || flags & 0x80) throw new Error('bad header ' + m.hex);
  if (flags & 0x01) (m.bigRef = uv()), (m.ref = Number(m.bigRef));
  if (flags & 0x02) m.topic = field().toString('utf8');
  if (flags & 0x04) m.event = field().toString('utf8');
  if (flags & 0x08) m.offset = Number(uv());
  if (flags & 0x10) {
    const d = field();
    if (flags & 0x20) m.data = JSON.parse(d.toString('utf8'));
    else m.bin = d.toString('hex');
  }
  if (flags & 0x40) Object.assign(m, JSON.parse(field().toString('utf8')));
  if (at !== buf.length) throw new Error('bytes left over in ' + m.hex);
  return m;
}

// within resolves with p, or rejects if it takes longer than ms.
function within(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// settle turns a promise into {ok, value} or {ok: false, code, error}.
function settle(p) {
  return p.then(
    (value) => ({ ok: true, value }),
    (err) => ({ ok: false, code: err && err.code, error: String(err), retryAfter: err && err.retryAfter }),
  );
}

// FakeServer is a ws server on loopback whose connections queue what they
// receive; the tests read it with next() and answer with send().
class FakeServer {
  constructor() {
    this.conns = [];
    this.connWaiters = [];
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL_BIN) ? SUBPROTOCOL_BIN : protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.wss.on('connection', (ws, req) => {
      const c = new FakeConn(ws, req);
      this.conns.push(c);
      const w = this.connWaiters.shift();
      if (w) w(c);
    });
  }

  ready() {
    return new Promise((resolve) => this.wss.once('listening', resolve));
  }

  get url() {
    return `ws://127.0.0.1:${this.wss.address().port}/ws`;
  }

  // conn resolves with connection number i (0-based) once it is made.
  conn(i) {
    const deadline = Date.now() + STEP;
    return new Promise((resolve, reject) => {
      const poll = () => {
        if (this.conns[i]) return resolve(this.conns[i]);
        if (Date.now() > deadline) return reject(new Error(`no connection #${i}`));
        setTimeout(poll, 5);
      };
      poll();
    });
  }

  close() {
    for (const c of this.conns) c.ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

class FakeConn {
  constructor(ws, req) {
    this.ws = ws;
    this.url = new URL(req.url, 'http://127.0.0.1');
    this.protocol = ws.protocol;
    this.inbox = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data, isBinary) => {
      let m;
      if (!isBinary) m = JSON.parse(data.toString());
      else if (this.protocol !== SUBPROTOCOL_BIN) m = { binary: true };
      else {
        try {
          m = { binary: true, ...binDecode(data) };
        } catch (err) {
          m = { binary: true, error: String(err), hex: data.toString('hex') };
        }
      }
      const w = this.waiters.shift();
      if (w) w(m);
      else this.inbox.push(m);
    });
  }

  // next resolves with the next message the client sent.
  next(what = 'a message') {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    return within(new Promise((resolve) => this.waiters.push(resolve)), STEP, what);
  }

  // nothing resolves true if the client sends nothing for ms.
  async nothing(ms) {
    if (this.inbox.length) return false;
    let got = false;
    const w = () => (got = true);
    this.waiters.push(w);
    await sleep(ms);
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
    return !got;
  }

  // send writes m: a string as a text message, bytes as a binary one, an
  // object in the connection's encoding.
  send(m) {
    if (typeof m === 'string' || m instanceof Uint8Array) this.ws.send(m);
    else if (this.protocol === SUBPROTOCOL_BIN) this.ws.send(binEncode(m));
    else this.ws.send(JSON.stringify(m));
  }

  reply(ref, data, topic) {
    this.send({ t: 'reply', ref, topic, status: 'ok', data });
  }

  // joinOK answers a join with the given reply data.
  async joinOK(data, what = 'join') {
    const j = await this.next(what);
    if (j.t !== 'join') throw new Error(`want a join, got ${JSON.stringify(j)}`);
    this.reply(j.ref, { epoch: 'E1', offset: 0, recovered: false, history: [], ...data }, j.topic);
    return j;
  }
}

// withServer runs fn with a fresh fake server and a Socket to it (opts
// added), and cleans both up whatever happens.
async function withServer(name, opts, fn) {
  const { Socket } = await loadClient();
  const srv = new FakeServer();
  await srv.ready();
  const logs = [];
  const socket = new Socket(srv.url, {
    WebSocket,
    reconnect: { min: 20, max: 100 },
    heartbeatInterval: 0,
    logger: (kind, msg) => logs.push(`${kind}: ${msg}`),
    ...opts,
  });
  try {
    await fn(srv, socket, logs);
  } catch (err) {
    failed++;
    emit({ check: name, ok: false, error: String((err && err.stack) || err), log: logs.slice(-20) });
  } finally {
    socket.disconnect();
    await srv.close();
  }
}

// --- the checks -------------------------------------------------------------

async function testJoinHistory() {
  await withServer('join_history', { params: () => ({ token: 't0k' }) }, async (srv, socket) => {
    socket.connect();
    const c = await srv.conn(0);
    eq('subprotocol offered', c.protocol, SUBPROTOCOL);
    eq('params in the URL', c.url.searchParams.get('token'), 't0k');
    const ch = socket.channel('room:1', { params: { pass: 'x' }, history: 2 });
    const seen = [];
    ch.on('msg', (data, meta) => seen.push(`msg:${data.n}@${meta.offset}${meta.history ? 'h' : ''}`));
    ch.on('tick', (data, meta) => seen.push(`tick:${data.n}@${meta.offset}`));
    ch.onJoin((reply) => seen.push(`onJoin:${reply.recovered}`));
    eq('state before join', ch.state, 'closed');
    const joined = settle(ch.join());
    eq('state joining', ch.state, 'joining');
    const j = await c.next('join');
    eq('join message', { t: j.t, topic: j.topic, params: j.params, history: j.history, recover: j.recover }, { t: 'join', topic: 'room:1', params: { pass: 'x' }, history: 2, recover: undefined });
    check('join ref is a positive integer', Number.isInteger(j.ref) && j.ref > 0, j.ref, '>0');
    // An event before the reply breaks the protocol; the client ignores it.
    c.send({ t: 'event', topic: 'room:1', event: 'msg', data: { n: 0 }, offset: 1 });
    c.reply(j.ref, {
      epoch: 'E1', offset: 2, recovered: false,
      history: [{ event: 'msg', data: { n: 1 }, offset: 1 }, { event: 'msg', data: { n: 2 }, offset: 2 }],
      reply: { motd: 'hi' },
    }, 'room:1');
    // Then a duplicate, a new one, one without offset, and noise to ignore.
    c.send({ t: 'event', topic: 'room:1', event: 'msg', data: { n: 2 }, offset: 2 });
    c.send({ t: 'event', topic: 'room:other', event: 'msg', data: { n: 99 }, offset: 3 });
    c.send({ t: 'mystery', topic: 'room:1' });
    c.send('not json');
    c.send({ t: 'reply', ref: 12345, status: 'ok' });
    c.send({ t: 'event', topic: 'room:1', event: 'msg', data: { n: 3 }, offset: 3 });
    c.send({ t: 'event', topic: 'room:1', event: 'tick', data: { n: 1 } });
    c.send({ t: 'event', topic: 'room:1', event: 'msg', data: { n: 1 }, offset: 1 });
    const r = await within(joined, STEP, 'join()');
    eq('join resolves with the reply', r.ok && { epoch: r.value.epoch, offset: r.value.offset, recovered: r.value.recovered, n: r.value.history.length, reply: r.value.reply }, { epoch: 'E1', offset: 2, recovered: false, n: 2, reply: { motd: 'hi' } });
    eq('state joined', ch.state, 'joined');
    const deadline = Date.now() + STEP;
    while (seen.length < 5 && Date.now() < deadline) await sleep(5);
    await sleep(50);
    eq('history first, oldest first, then events, duplicates dropped', seen, ['onJoin:false', 'msg:1@1h', 'msg:2@2h', 'msg:3@3', 'tick:1@undefined']);
    eq('position', ch.position(), { epoch: 'E1', offset: 3 });
    // A second join() while joined is the same promise, with no new message.
    const again = await settle(ch.join());
    eq('join() again resolves at once', again.ok && again.value.epoch, 'E1');
    check('join() again sends nothing', await c.nothing(50), 'a message', 'nothing');
  });
}

async function testJoinRefused() {
  await withServer('join_refused', {}, async (srv, socket) => {
    socket.connect();
    const c = await srv.conn(0);
    const ch = socket.channel('secret');
    let errs = 0;
    ch.onError(() => errs++);
    const p = settle(ch.join());
    const j = await c.next('join');
    c.send({ t: 'reply', ref: j.ref, topic: 'secret', status: 'error', error: { code: 'unauthorized', message: 'no' } });
    const r = await within(p, STEP, 'join()');
    eq('refused join rejects with the code', { ok: r.ok, code: r.code }, { ok: false, code: 'unauthorized' });
    eq('state errored', ch.state, 'errored');
    eq('onError called', errs, 1);
    check('a refused join is not retried', await c.nothing(300), 'a retry', 'nothing');
    const push = await settle(ch.push('msg', {}));
    eq('push on a refused channel rejects', push.code, 'not_joined');
  });
}

async function testPushes() {
  await withServer('pushes', {}, async (srv, socket) => {
    socket.connect();
    const c = await srv.conn(0);
    const ch = socket.channel('room:p');
    const before = await settle(ch.push('msg', {}));
    eq('push before join rejects', before.code, 'not_joined');
    const joined = ch.join();
    await c.joinOK({});
    await within(joined, STEP, 'join()');

    const ok = settle(ch.push('msg', { text: 'a' }));
    const m1 = await c.next('push 1');
    eq('push message', { t: m1.t, topic: m1.topic, event: m1.event, data: m1.data }, { t: 'push', topic: 'room:p', event: 'msg', data: { text: 'a' } });
    c.reply(m1.ref, { offset: 5 }, 'room:p');
    eq('push resolves with the reply data', await within(ok, STEP, 'push'), { ok: true, value: { offset: 5 } });

    const bad = settle(ch.push('msg', { text: 'b' }));
    const m2 = await c.next('push 2');
    c.send({ t: 'reply', ref: m2.ref, topic: 'room:p', status: 'error', error: { code: 'rate_limited', message: 'slow down', retry_after: 250 } });
    const r2 = await within(bad, STEP, 'push');
    eq('push rejects with the error', { ok: r2.ok, code: r2.code, retryAfter: r2.retryAfter }, { ok: false, code: 'rate_limited', retryAfter: 250 });

    const t0 = Date.now();
    const slow = settle(ch.push('msg', { text: 'c' }, { timeout: 150 }));
    const m3 = await c.next('push 3');
    const r3 = await within(slow, STEP, 'push');
    const took = Date.now() - t0;
    eq('unanswered push rejects with timeout', r3.code, 'timeout');
    check('timeout after about 150 ms', took >= 140 && took < 1500, took, '150..1500 ms');
    // A late reply to it is dropped; the next push still works.
    c.reply(m3.ref, { late: true }, 'room:p');
    const next = settle(ch.push('msg', { text: 'd' }));
    const m4 = await c.next('push 4');
    check('refs differ', new Set([m1.ref, m2.ref, m3.ref, m4.ref]).size === 4, [m1.ref, m2.ref, m3.ref, m4.ref], 'four refs');
    c.reply(m4.ref, { offset: 6 }, 'room:p');
    eq('push after a late reply', await within(next, STEP, 'push'), { ok: true, value: { offset: 6 } });
  });
}

async function testServerPush() {
  await withServer('server_push', {}, async (srv, socket) => {
    socket.connect();
    const c = await srv.conn(0);
    const ch = socket.channel('room:s');
    const got = [];
    ch.onPush('ask', (data, meta) => {
      got.push([data, meta.event]);
      return { answer: data.q * 2 };
    });
    ch.onPush('slow', async (data) => {
      await sleep(20);
      const err = new Error('not found');
      err.code = 'not_found';
      throw err;
    });
    ch.onPush('note', (data) => got.push(['note', data]));
    const joined = ch.join();
    await c.joinOK({});
    await within(joined, STEP, 'join()');
    c.send({ t: 'push', ref: 9, topic: 'room:s', event: 'ask', data: { q: 21 } });
    const r1 = await c.next('reply to push 9');
    eq('push answered by the return value', { t: r1.t, ref: r1.ref, status: r1.status, data: r1.data, topic: r1.topic }, { t: 'reply', ref: 9, status: 'ok', data: { answer: 42 }, topic: 'room:s' });
    c.send({ t: 'push', topic: 'room:s', event: 'note', data: 'fyi' });
    c.send({ t: 'push', ref: 10, topic: 'room:s', event: 'slow', data: {} });
    const r2 = await c.next('reply to push 10');
    eq('a push without ref is not answered; a throw is an error reply', { ref: r2.ref, status: r2.status, code: r2.error && r2.error.code, message: r2.error && r2.error.message }, { ref: 10, status: 'error', code: 'not_found', message: 'not found' });
    c.send({ t: 'push', ref: 11, topic: 'room:s', event: 'unknown', data: {} });
    const r3 = await c.next('reply to push 11');
    eq('a push without a handler', { ref: r3.ref, status: r3.status, code: r3.error && r3.error.code }, { ref: 11, status: 'error', code: 'no_handler' });
    eq('handlers saw the pushes', got, [[{ q: 21 }, 'ask'], ['note', 'fyi']]);
  });
}

async function testPresence() {
  const { Presence } = await loadClient();
  await withServer('presence', {}, async (srv, socket) => {
    socket.connect();
    const c = await srv.conn(0);
    const ch = socket.channel('room:pr');
    const pr = new Presence(ch);
    const calls = [];
    pr.onJoin((key, cur, metas) => calls.push(`join ${key} had=${cur ? cur.metas.length : 'none'} +${metas.map((m) => m.id)}`));
    pr.onLeave((key, rem, metas) => calls.push(`leave ${key} left=${rem.metas.length} -${metas.map((m) => m.id)}`));
    pr.onSync(() => calls.push('sync'));
    const joined = ch.join();
    await c.joinOK({});
    await within(joined, STEP, 'join()');
    const A1 = { id: 'a1', meta: { name: 'Alice' } };
    const A2 = { id: 'a2', meta: { name: 'Alice' } };
    const B1 = { id: 'b1', meta: { name: 'Bob' } };
    const C1 = { id: 'c1', meta: { name: 'Carol' } };
    c.send({ t: 'presence_state', topic: 'room:pr', state: { alice: { metas: [A1, A2] }, bob: { metas: [B1] } } });
    c.send({ t: 'presence_diff', topic: 'room:pr', joins: { carol: { metas: [C1] } }, leaves: { alice: { metas: [A1] } } });
    c.send({ t: 'presence_diff', topic: 'room:pr', joins: {}, leaves: { bob: { metas: [B1] } } });
    c.send({ t: 'presence_diff', topic: 'room:pr', joins: { alice: { metas: [A1] } }, leaves: {} });
    const deadline = Date.now() + STEP;
    while (calls.filter((x) => x === 'sync').length < 4 && Date.now() < deadline) await sleep(5);
    eq('presence callbacks', calls, [
      'join alice had=none +a1,a2', 'join bob had=none +b1', 'sync',
      'join carol had=none +c1', 'leave alice left=1 -a1', 'sync',
      'leave bob left=0 -b1', 'sync',
      'join alice had=1 +a1', 'sync',
    ]);
    const list = pr.list().map((e) => `${e.key}:${e.metas.map((m) => m.id).join(',')}`).sort();
    eq('presence list', list, ['alice:a2,a1', 'carol:c1']);
    eq('metas keep their meta', pr.list().find((e) => e.key === 'carol').metas[0].meta, { name: 'Carol' });

    // After a reconnect the new state replaces the old one, telling the
    // differences: carol went, alice lost a connection, dave came.
    calls.length = 0;
    c.ws.close(1001);
    const c1 = await srv.conn(1);
    await c1.joinOK({}, 'rejoin');
    c1.send({ t: 'presence_state', topic: 'room:pr', state: { alice: { metas: [A1] }, dave: { metas: [{ id: 'd1', meta: {} }] } } });
    const d2 = Date.now() + STEP;
    while (!calls.includes('sync') && Date.now() < d2) await sleep(5);
    eq('presence state after a rejoin', calls, ['join dave had=none +d1', 'leave carol left=0 -c1', 'leave alice left=1 -a2', 'sync']);
    eq('presence list after a rejoin', pr.list().map((e) => e.key).sort(), ['alice', 'dave']);
  });
}

async function testReconnect() {
  await withServer('reconnect', { reconnect: { min: 50, max: 100 } }, async (srv, socket) => {
    const closes = [];
    let opens = 0;
    socket.onOpen(() => opens++);
    socket.onClose((e) => closes.push([e.code, e.reconnect]));
    socket.connect();
    const c0 = await srv.conn(0);
    const ch = socket.channel('room:r', { history: 10 });
    const seen = [];
    const joins = [];
    ch.on('msg', (d, meta) => seen.push(meta.offset));
    ch.onJoin((r) => joins.push(r.recovered));
    const joined = ch.join();
    await c0.joinOK({ epoch: 'E7', offset: 2, history: [{ event: 'msg', data: 1, offset: 1 }, { event: 'msg', data: 2, offset: 2 }] });
    await within(joined, STEP, 'join()');
    c0.send({ t: 'event', topic: 'room:r', event: 'msg', data: 3, offset: 3 });
    const d0 = Date.now() + STEP;
    while (seen.length < 3 && Date.now() < d0) await sleep(5);
    // A push in flight when the connection drops fails with 'disconnected'.
    const inflight = settle(ch.push('msg', 'x'));
    await c0.next('push in flight');
    c0.ws.close(1001, 'going away');
    const lost = await within(inflight, STEP, 'push in flight');
    eq('push in flight rejects', lost.code, 'disconnected');
    // A push made while away waits for the rejoin.
    const t0 = Date.now();
    const queued = settle(ch.push('msg', 'while away'));
    const c1 = await srv.conn(1);
    const took = Date.now() - t0;
    check('reconnected with backoff (<= max + slack)', took < 1000, took, '< 1000 ms');
    eq('close reported, with reconnect', closes[0], [1001, true]);
    const j = await c1.next('rejoin');
    eq('rejoin recovers from the last position, with history as the fallback', { t: j.t, recover: j.recover, history: j.history }, { t: 'join', recover: { epoch: 'E7', offset: 3 }, history: 10 });
    check('nothing sent before the join reply', await c1.nothing(50), 'a message', 'nothing');
    c1.reply(j.ref, { epoch: 'E7', offset: 5, recovered: true, history: [{ event: 'msg', data: 3, offset: 3 }, { event: 'msg', data: 4, offset: 4 }, { event: 'msg', data: 5, offset: 5 }] }, 'room:r');
    const p = await c1.next('queued push');
    eq('queued push sent after the rejoin', { t: p.t, data: p.data }, { t: 'push', data: 'while away' });
    c1.reply(p.ref, { offset: 6 }, 'room:r');
    eq('queued push resolves', await within(queued, STEP, 'queued push'), { ok: true, value: { offset: 6 } });
    c1.send({ t: 'event', topic: 'room:r', event: 'msg', data: 6, offset: 6 });
    const d1 = Date.now() + STEP;
    while (seen.length < 6 && Date.now() < d1) await sleep(5);
    eq('each event once, in order', seen, [1, 2, 3, 4, 5, 6]);
    eq('onJoin recovered flags', joins, [false, true]);
    eq('opens', opens, 2);
    eq('position after recovery', ch.position(), { epoch: 'E7', offset: 6 });

    // A new epoch resets the position: the same offsets are new events.
    c1.ws.close(1011, 'oops');
    const c2 = await srv.conn(2);
    const j2 = await c2.next('rejoin 2');
    eq('second rejoin recovers', j2.recover, { epoch: 'E7', offset: 6 });
    c2.reply(j2.ref, { epoch: 'E8', offset: 1, recovered: false, reason: 'epoch', history: [{ event: 'msg', data: 1, offset: 1 }] }, 'room:r');
    c2.send({ t: 'event', topic: 'room:r', event: 'msg', data: 2, offset: 2 });
    const d2 = Date.now() + STEP;
    while (seen.length < 8 && Date.now() < d2) await sleep(5);
    eq('after a new epoch the stream starts over', seen.slice(6), [1, 2]);
    eq('position in the new epoch', ch.position(), { epoch: 'E8', offset: 2 });
  });
}

async function testBackoffGrows() {
  // No server listening: the attempts must spread out, not spin.
  const { Socket } = await loadClient();
  const srv = new FakeServer();
  await srv.ready();
  const url = srv.url;
  await srv.close();
  const delays = [];
  const socket = new Socket(url, {
    WebSocket,
    heartbeatInterval: 0,
    reconnect: { min: 40, max: 320 },
    logger: (kind, msg, data) => kind === 'reconnect' && delays.push(data.delay),
  });
  socket.connect();
  await sleep(1500);
  socket.disconnect();
  check('several attempts', delays.length >= 4 && delays.length < 40, delays, '4..40 attempts in 1.5 s');
  const caps = delays.map((d, i) => d <= Math.min(320, 40 * 2 ** i));
  check('delays within the full-jitter caps', caps.every(Boolean), delays, 'delay[i] <= min(max, min*2^i)');
}

async function testBuffer() {
  await withServer('buffer', { bufferSize: 2 }, async (srv, socket) => {
    const ch = socket.channel('room:b');
    const joined = ch.join({ timeout: 5000 });
    // Not connected yet: pushes wait; the third pushes out the first.
    const a = settle(ch.push('msg', 'a'));
    const b = settle(ch.push('msg', 'b'));
    const c = settle(ch.push('msg', 'c'));
    const ra = await within(a, STEP, 'push a');
    eq('oldest push rejected when the buffer is full', ra.code, 'buffer_full');
    socket.connect();
    const conn = await srv.conn(0);
    await conn.joinOK({});
    await within(joined, STEP, 'join()');
    const pb = await conn.next('push b');
    const pc = await conn.next('push c');
    eq('buffered pushes sent in order after the join', [pb.data, pc.data], ['b', 'c']);
    conn.reply(pb.ref, 1);
    conn.reply(pc.ref, 2);
    eq('buffered pushes resolve', [await within(b, STEP, 'b'), await within(c, STEP, 'c')], [{ ok: true, value: 1 }, { ok: true, value: 2 }]);
  });
}

async function testNoReconnect(code) {
  await withServer(`no_reconnect_${code}`, { reconnect: { min: 20, max: 40 } }, async (srv, socket) => {
    const closes = [];
    socket.onClose((e) => closes.push([e.code, e.reconnect]));
    socket.connect();
    const c0 = await srv.conn(0);
    const ch = socket.channel('room:n');
    const joined = ch.join();
    await c0.joinOK({});
    await within(joined, STEP, 'join()');
    const queued = settle(ch.push('msg', 'x', { timeout: 5000 }));
    c0.ws.close(code, 'go away');
    await sleep(500);
    eq(`no reconnect after ${code}`, srv.conns.length, 1);
    eq(`close ${code} reported without reconnect`, closes, [[code, false]]);
    eq(`socket disconnected after ${code}`, socket.isConnected(), false);
    // The push was sent before the close and its answer will never come.
    const r = await within(queued, STEP, 'push');
    eq(`push fails after ${code}`, r.code, 'disconnected');
  });
}

async function testHeartbeat() {
  await withServer('heartbeat', { heartbeatInterval: 80, timeout: 150 }, async (srv, socket) => {
    socket.connect();
    const c0 = await srv.conn(0);
    const p1 = await c0.next('first ping');
    eq('ping message', { t: p1.t, ref: typeof p1.ref }, { t: 'ping', ref: 'number' });
    c0.reply(p1.ref);
    const p2 = await c0.next('second ping');
    eq('pings continue after a reply', p2.t, 'ping');
    // Unanswered: the client gives the connection up and reconnects.
    const c1 = await srv.conn(1);
    check('reconnected after a missed ping', !!c1, c1, 'a new connection');
    const code = await within(c0.closed, STEP, 'the dead connection to close');
    check('dead connection closed by the client', typeof code === 'number', code, 'a close code');
  });
}

// --- payloads and the binary encoding -------------------------------------

// Byte vectors of Go's encodeBin (channel/wire_bin.go) for the same
// messages: the first is TestBinaryEncodingShape's; the others were printed
// by encodeBin from wireMsg literals (Ref 1<<40 and 1<<53-1 included).
// The client objects are built in the key order the client uses.
const GO_VECTORS = [
  ['event (TestBinaryEncodingShape)', { t: 'event', topic: 't', event: 'e', offset: 300, data: new Uint8Array([9]) }, '06 1e 01 74 01 65 ac 02 01 09'],
  ['join with params and history', { t: 'join', topic: 'room:1', params: { pass: 'x' }, history: 2, ref: 1 },
    '01430106726f6f6d3a31237b22706172616d73223a7b2270617373223a2278227d2c22686973746f7279223a327d'],
  ['join with recover', { t: 'join', topic: 'r', recover: { epoch: 'E7', offset: 3 }, history: 10, ref: 7 },
    '0143070172327b227265636f766572223a7b2265706f6368223a224537222c226f6666736574223a337d2c22686973746f7279223a31307d'],
  ['push JSON', { t: 'push', topic: 'room:b', event: 'msg', data: { text: 'a' }, ref: 2 }, '03370206726f6f6d3a62036d73670c7b2274657874223a2261227d'],
  ['push bytes, ref 2^40', { t: 'push', topic: 'room:b', event: 'blob', data: new Uint8Array([0, 1, 2, 255]), ref: 2 ** 40 },
    '031780808080802006726f6f6d3a6204626c6f6204000102ff'],
  ['push empty bytes, ref 2^53-1', { t: 'push', topic: 'x', event: 'y', data: new Uint8Array(0), ref: Number.MAX_SAFE_INTEGER }, '0317ffffffffffffff0f0178017900'],
  ['reply JSON', { t: 'reply', ref: 9, topic: 'room:s', status: 'ok', data: { answer: 42 } },
    '04730906726f6f6d3a730d7b22616e73776572223a34327d0f7b22737461747573223a226f6b227d'],
  ['reply bytes', { t: 'reply', ref: 9, topic: 'room:s', status: 'ok', data: new Uint8Array([0xde, 0xad]) }, '04530906726f6f6d3a7302dead0f7b22737461747573223a226f6b227d'],
  ['reply error', { t: 'reply', ref: 10, topic: 'room:s', status: 'error', error: { code: 'not_found', message: 'not found' } },
    '04430a06726f6f6d3a73457b22737461747573223a226572726f72222c226572726f72223a7b22636f6465223a226e6f745f666f756e64222c226d657373616765223a226e6f7420666f756e64227d7d'],
  ['ping', { t: 'ping', ref: 3 }, '050103'],
  ['leave', { t: 'leave', topic: 'room:s', ref: 4 }, '02030406726f6f6d3a73'],
  ['left', { t: 'left', topic: 'room:s', reason: 'removed' }, '094206726f6f6d3a73147b22726561736f6e223a2272656d6f766564227d'],
  ['UTF-8 names, JSON string data', { t: 'event', topic: 'ü', event: '日本', data: 'é' }, '063602c3bc06e697a5e69cac0422c3a922'],
  ['presence_diff', { t: 'presence_diff', topic: 'p', joins: { a: { metas: [{ id: 'a1', meta: { n: 1 } }] } } },
    '08420170367b226a6f696e73223a7b2261223a7b226d65746173223a5b7b226964223a226131222c226d657461223a7b226e223a317d7d5d7d7d7d'],
];

// normal makes a message comparable: bytes as 'bytes:<hex>', keys sorted.
function normal(m) {
  const out = {};
  for (const k of Object.keys(m).sort()) out[k] = bytesOf(m[k]);
  return out;
}

async function testCodec() {
  const { _codec: codec } = await loadClient();
  const { encodeBinary, decodeBinary, encodeJSON, base64Encode, base64Decode } = codec;
  for (const [name, msg, want] of GO_VECTORS) {
    const w = want.replace(/\s+/g, '');
    eq(`binary encode = Go: ${name}`, hex(encodeBinary(msg)), w);
    let back;
    try {
      back = normal(decodeBinary(unhex(w)));
    } catch (err) {
      back = String(err);
    }
    eq(`binary decode of Go's bytes: ${name}`, back, normal(msg));
  }
  // uvarints by hand from the spec: 7 bits a byte, low first.
  const refs = [
    [1, '01'], [127, '7f'], [128, '8001'], [300, 'ac02'], [16384, '808001'],
    [2 ** 31, '8080808008'], [2 ** 32 + 1, '8180808010'], [2 ** 40, '808080808020'],
    [2 ** 53 - 1, 'ffffffffffffff0f'],
  ];
  for (const [ref, v] of refs) {
    eq(`uvarint ${ref}`, hex(encodeBinary({ t: 'ping', ref })), '0501' + v);
    eq(`uvarint ${ref} decoded`, decodeBinary(unhex('0501' + v)).ref, ref);
  }
  // A non-minimal varint is still a varint (as Go's binary.Uvarint reads it).
  eq('non-minimal uvarint', decodeBinary(unhex('05018100')).ref, 1);
  // Payload kinds: a view at an offset, a DataView, an ArrayBuffer, Buffer.
  const ab = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer;
  const kinds = [
    ['Uint8Array view', new Uint8Array(ab, 2, 3)], ['DataView', new DataView(ab, 2, 3)],
    ['ArrayBuffer', ab.slice(2, 5)], ['Buffer', Buffer.from([2, 3, 4])], ['Uint16Array', new Uint16Array([0x0302, 0x04])],
  ];
  for (const [name, data] of kinds) {
    const want = name === 'Uint16Array' ? '0203' + '0400' : '020304';
    eq(`bytes payload from ${name}`, hex(encodeBinary({ t: 'push', topic: 't', event: 'e', data })), `0316017401650${want.length / 2}` + want);
  }
  eq('JSON null data is JSON', hex(encodeBinary({ t: 'push', topic: 't', event: 'e', data: null })), '0336017401650' + '46e756c6c');
  eq('undefined data is none', hex(encodeBinary({ t: 'push', topic: 't', event: 'e', data: undefined })), '03060174016' + '5');
  const dec = decodeBinary(unhex('061e01740165ac020109'));
  check('decoded bytes are a Uint8Array of their own', dec.data instanceof Uint8Array && dec.data.byteLength === 1 && dec.data.buffer.byteLength === 1, dec.data, 'Uint8Array [9], own buffer');
  eq('a leading BOM in a name is kept', decodeBinary(unhex('060204efbbbf65')).topic, '\ufeffe');
  // Malformed: Go's TestBinaryEncodingShape list, and more.
  const bad = [
    ['empty', ''], ['header cut', '06'], ['type 0', '0000'], ['type 10', '0a00'], ['reserved flag', '0680'],
    ['JSON flag without data', '0620'], ['topic cut short', '060205 61'], ['ping ref cut short', '050101'.slice(0, 4) + '80'],
    ['JSON data that is not JSON', '0336 0174 0165 0178'], ['field longer than the message', '0306 0174 0165 07'],
    ['bytes left over', '050101 00'], ['varint of 11 bytes', '0501 8080808080808080808001'],
    ['ref above 2^53-1', '0501 8080808080808010'], ['ref 2^64 overflow', '0501 ffffffffffffffffff01'],
    ['rest not an object', '0540 025b5d'], ['rest null', '0540 046e756c6c'], ['rest not JSON', '0540 017b'],
    ['topic not UTF-8', '0602 01ff'],
  ];
  for (const [name, h] of bad) {
    let got;
    try {
      got = normal(decodeBinary(unhex(h)));
    } catch (err) {
      got = 'error';
    }
    eq(`malformed: ${name}`, got, 'error');
  }
  // Base64: RFC 4648's vectors, every byte value, lengths 0..70 against Buffer.
  const rfc = [['', ''], ['f', 'Zg=='], ['fo', 'Zm8='], ['foo', 'Zm9v'], ['foob', 'Zm9vYg=='], ['fooba', 'Zm9vYmE='], ['foobar', 'Zm9vYmFy']];
  eq('base64 RFC 4648 vectors', rfc.map(([a]) => base64Encode(new TextEncoder().encode(a))), rfc.map(([, b]) => b));
  eq('base64 decode RFC 4648 vectors', rfc.map(([, b]) => new TextDecoder().decode(base64Decode(b))), rfc.map(([a]) => a));
  const all = new Uint8Array(256).map((_, i) => i);
  eq('base64 of every byte = Buffer', base64Encode(all), Buffer.from(all).toString('base64'));
  eq('base64 decode of every byte', hex(base64Decode(Buffer.from(all).toString('base64'))), hex(all));
  let mism = [];
  for (let n = 0; n <= 70; n++) {
    const b = new Uint8Array(n).map((_, i) => (i * 151 + n * 7) & 255);
    const e = base64Encode(b);
    if (e !== Buffer.from(b).toString('base64') || hex(base64Decode(e)) !== hex(b)) mism.push(n);
  }
  eq('base64 round trips, lengths 0..70', mism, []);
  const big = new Uint8Array(100000).map((_, i) => (i * 31) & 255);
  eq('base64 of 100 kB = Buffer', base64Encode(big) === Buffer.from(big).toString('base64'), true);
  const badB64 = ['Zg=', 'Z===', 'Zm9v!A==', '=Zg=', 'Zg==Zg==', 'Zm 9', 'Zm9vé==='];
  eq('bad base64 throws', badB64.map((b) => { try { base64Decode(b); return 'ok'; } catch (err) { return 'error'; } }), badB64.map(() => 'error'));
  eq('JSON encoding of bytes: data_b64', encodeJSON({ t: 'push', topic: 't', event: 'e', data: new Uint8Array([0, 1, 2, 255]), ref: 3 }),
    '{"t":"push","topic":"t","event":"e","ref":3,"data_b64":"AAEC/w=="}');
}

async function testBinarySocket() {
  const { Presence } = await loadClient();
  await withServer('binary_socket', { encoding: 'binary' }, async (srv, socket, logs) => {
    socket.connect();
    const c = await srv.conn(0);
    eq('binary: subprotocol offered', c.protocol, SUBPROTOCOL_BIN);
    const ch = socket.channel('bin:1', { params: { pass: 'x' }, history: 5 });
    const pr = new Presence(ch);
    const seen = [];
    ch.on('*', (data, meta) => seen.push([meta.event, bytesOf(data), meta.offset, meta.history]));
    const joined = settle(ch.join());
    const j = await c.next('join');
    eq('binary: join is a binary message', { binary: j.binary, t: j.t, topic: j.topic, params: j.params, history: j.history, error: j.error }, { binary: true, t: 'join', topic: 'bin:1', params: { pass: 'x' }, history: 5, error: undefined });
    eq('binary: join bytes', j.hex, '0143' + tUvarint(j.ref).toString('hex') + '05' + Buffer.from('bin:1').toString('hex') + tField(Buffer.from('{"params":{"pass":"x"},"history":5}')).toString('hex'));
    // The join reply's data is JSON; its history carries bytes as data_b64.
    c.send({
      t: 'reply', ref: j.ref, topic: 'bin:1', status: 'ok',
      data: { epoch: 'B1', offset: 2, recovered: false, history: [{ event: 'blob', data_b64: 'AQID', offset: 1 }, { event: 'msg', data: { n: 2 }, offset: 2 }] },
    });
    const r = await within(joined, STEP, 'join()');
    eq('binary: join reply history, bytes as Uint8Array', r.ok && r.value.history.map((h) => [h.event, bytesOf(h.data), h.offset, h.data_b64]), [['blob', 'bytes:010203', 1, undefined], ['msg', { n: 2 }, 2, undefined]]);
    // Events: bytes, JSON, empty bytes without offset; malformed binary
    // messages and a text message in between are ignored.
    c.send({ t: 'event', topic: 'bin:1', event: 'blob', bin: Buffer.from([0xff, 0, 7]), offset: 3 });
    c.send(unhex('0680')); // a reserved flag
    c.send(unhex('061e01')); // cut short
    c.send(unhex('0a00')); // an unknown type
    c.send(unhex('04010180808080808080808001')); // a ref past 2^64
    c.send('{"t":"event","topic":"bin:1","event":"msg","data":{"n":99},"offset":9}'); // text on a binary connection
    c.send({ t: 'event', topic: 'bin:1', event: 'msg', data: { n: 4 }, offset: 4 });
    c.send({ t: 'event', topic: 'bin:1', event: 'tick', bin: Buffer.alloc(0) });
    c.send({ t: 'event', topic: 'bin:1', event: 'msg', data: 'é', offset: 5 });
    await waitFor(() => seen.length >= 6, 'six events');
    eq('binary: events in order, payloads as sent', seen, [
      ['blob', 'bytes:010203', 1, true], ['msg', { n: 2 }, 2, true],
      ['blob', 'bytes:ff0007', 3, false], ['msg', { n: 4 }, 4, false], ['tick', 'bytes:', undefined, false], ['msg', 'é', 5, false],
    ]);
    eq('binary: malformed messages logged', logs.filter((l) => l.includes('malformed binary')).length, 4);
    eq('binary: text message logged', logs.filter((l) => l.includes('text message on a binary connection')).length, 1);

    // Pushes: bytes (from several kinds of buffer), JSON; replies of both kinds.
    const ab = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer;
    const p1 = settle(ch.push('up', new Uint8Array(ab, 1, 3)));
    const m1 = await c.next('push bytes');
    eq('binary: push of a Uint8Array is raw bytes', { t: m1.t, topic: m1.topic, event: m1.event, bin: m1.bin, data: m1.data, flags: m1.flags }, { t: 'push', topic: 'bin:1', event: 'up', bin: '010203', data: undefined, flags: 0x17 });
    c.send({ t: 'reply', ref: m1.ref, topic: 'bin:1', status: 'ok', bin: Buffer.from([0xca, 0xfe]) });
    const r1 = await within(p1, STEP, 'push reply');
    eq('binary: bytes reply resolves with a Uint8Array', r1.ok && bytesOf(r1.value), 'bytes:cafe');
    const p2 = settle(ch.push('up', new DataView(ab, 6, 2)));
    const m2 = await c.next('push DataView');
    const p3 = settle(ch.push('up', ab));
    const m3 = await c.next('push ArrayBuffer');
    const p4 = settle(ch.push('msg', { text: 'hi' }));
    const m4 = await c.next('push JSON');
    eq('binary: DataView, ArrayBuffer and JSON pushes', [m2.bin, m3.bin, m4.data, m4.flags], ['0607', '0001020304050607', { text: 'hi' }, 0x37]);
    c.send({ t: 'reply', ref: m2.ref, topic: 'bin:1', status: 'ok', data: { offset: 7 } });
    c.send({ t: 'reply', ref: m3.ref, topic: 'bin:1', status: 'error', error: { code: 'too_big', message: 'no' } });
    c.send({ t: 'reply', ref: m4.ref, topic: 'bin:1', status: 'ok' });
    eq('binary: replies', [await within(p2, STEP, 'p2'), (await within(p3, STEP, 'p3')).code, await within(p4, STEP, 'p4')], [{ ok: true, value: { offset: 7 } }, 'too_big', { ok: true }]);

    // Big refs: 2^40, then 2^53-1, then the wrap to 1.
    socket._ref = 2 ** 40 - 1;
    const p5 = settle(ch.push('msg', 1));
    const m5 = await c.next('push ref 2^40');
    eq('binary: ref 2^40 on the wire', [String(m5.bigRef), m5.hex.slice(4, 16)], [String(2n ** 40n), '808080808020']);
    c.send({ t: 'reply', ref: 2 ** 40, topic: 'bin:1', status: 'ok', data: 'big' });
    eq('binary: reply to ref 2^40', await within(p5, STEP, 'p5'), { ok: true, value: 'big' });
    socket._ref = Number.MAX_SAFE_INTEGER - 1;
    const p6 = settle(ch.push('msg', 2));
    const m6 = await c.next('push ref 2^53-1');
    eq('binary: ref 2^53-1 on the wire', [String(m6.bigRef), m6.hex.slice(4, 20)], [String(2n ** 53n - 1n), 'ffffffffffffff0f']);
    c.send({ t: 'reply', ref: Number.MAX_SAFE_INTEGER, topic: 'bin:1', status: 'ok', data: 'max' });
    eq('binary: reply to ref 2^53-1', await within(p6, STEP, 'p6'), { ok: true, value: 'max' });
    const p7 = settle(ch.push('msg', 3));
    const m7 = await c.next('push after the wrap');
    eq('binary: refs wrap to 1', m7.ref, 1);
    c.send({ t: 'reply', ref: 1, topic: 'bin:1', status: 'ok' });
    await within(p7, STEP, 'p7');

    // Server pushes: bytes answered with a Uint8Array, with a ref of 2^40.
    const got = [];
    ch.onPush('thumb', (data) => {
      got.push(bytesOf(data));
      return new Uint8Array([data[0] + 1, 0xee]);
    });
    ch.onPush('json', (data) => ({ echo: data }));
    ch.onPush('fail', () => {
      throw Object.assign(new Error('nope'), { code: 'denied' });
    });
    c.send({ t: 'push', ref: 2 ** 40, topic: 'bin:1', event: 'thumb', bin: Buffer.from([0x41]) });
    const a1 = await c.next('reply to the bytes push');
    eq('binary: server push answered with bytes', { t: a1.t, ref: String(a1.bigRef), topic: a1.topic, status: a1.status, bin: a1.bin, flags: a1.flags }, { t: 'reply', ref: String(2n ** 40n), topic: 'bin:1', status: 'ok', bin: '42ee', flags: 0x53 });
    eq('binary: that reply byte for byte', a1.hex, '0453' + '808080808020' + '05' + Buffer.from('bin:1').toString('hex') + '0242ee' + tField(Buffer.from('{"status":"ok"}')).toString('hex'));
    c.send({ t: 'push', ref: 12, topic: 'bin:1', event: 'json', data: [1, 'two'] });
    const a2 = await c.next('reply to the JSON push');
    eq('binary: server push answered with JSON', { ref: a2.ref, status: a2.status, data: a2.data }, { ref: 12, status: 'ok', data: { echo: [1, 'two'] } });
    c.send({ t: 'push', ref: 13, topic: 'bin:1', event: 'fail', bin: Buffer.from([1]) });
    const a3 = await c.next('reply to the failing push');
    eq('binary: error reply in rest', { ref: a3.ref, status: a3.status, error: a3.error }, { ref: 13, status: 'error', error: { code: 'denied', message: 'nope' } });
    eq('binary: handler got a Uint8Array', got, ['bytes:41']);

    // Presence over binary.
    c.send({ t: 'presence_state', topic: 'bin:1', state: { alice: { metas: [{ id: 'a1', meta: { n: 'A' } }] } } });
    c.send({ t: 'presence_diff', topic: 'bin:1', joins: { bob: { metas: [{ id: 'b1' }] } }, leaves: { alice: { metas: [{ id: 'a1' }] } } });
    let syncs = 0;
    pr.onSync(() => syncs++);
    await waitFor(() => syncs >= 2, 'two presence syncs');
    eq('binary: presence', pr.list(), [{ key: 'bob', metas: [{ id: 'b1' }] }]);

    // A ping answered; then the server ends the membership.
    const ping = socket._request({ t: 'ping' }, STEP);
    const pm = await c.next('ping');
    eq('binary: ping', [pm.t, pm.flags, pm.hex.length], ['ping', 0x01, 6]);
    c.send({ t: 'reply', ref: pm.ref, status: 'ok' });
    await within(ping, STEP, 'ping reply');
    const lefts = [];
    ch.onLeft((e) => lefts.push(e.reason));
    c.send({ t: 'left', topic: 'bin:1', reason: 'removed' });
    await waitFor(() => lefts.length > 0, 'left');
    eq('binary: left', [lefts, ch.state], [['removed'], 'closed']);
  });
}

async function testBinaryOffline() {
  // A push of bytes made before the join is copied: changing the array
  // afterwards does not change what is sent.
  await withServer('binary_offline', { encoding: 'binary' }, async (srv, socket) => {
    const ch = socket.channel('bin:o');
    const joined = ch.join();
    const buf = new Uint8Array([1, 2, 3]);
    const p = settle(ch.push('up', buf));
    buf[0] = 9;
    socket.connect();
    const c = await srv.conn(0);
    await c.joinOK({});
    await within(joined, STEP, 'join()');
    const m = await c.next('buffered push');
    eq('binary: buffered bytes are a copy', m.bin, '010203');
    c.send({ t: 'reply', ref: m.ref, topic: 'bin:o', status: 'ok' });
    await within(p, STEP, 'push');
  });
}

async function testJSONBytes() {
  await withServer('json_bytes', {}, async (srv, socket, logs) => {
    socket.connect();
    const c = await srv.conn(0);
    eq('json: subprotocol', c.protocol, SUBPROTOCOL);
    const ch = socket.channel('j:1', { history: 5 });
    const seen = [];
    ch.on('*', (data, meta) => seen.push([meta.event, bytesOf(data), meta.offset]));
    const joined = settle(ch.join());
    await c.joinOK({ offset: 2, history: [{ event: 'blob', data_b64: '/+8=', offset: 1 }, { event: 'msg', data: 2, offset: 2 }] });
    const r = await within(joined, STEP, 'join()');
    eq('json: history bytes', r.ok && r.value.history.map((h) => bytesOf(h.data)), ['bytes:ffef', 2]);
    c.send({ t: 'event', topic: 'j:1', event: 'blob', data_b64: 'AAEC/w==', offset: 3 });
    c.send({ t: 'event', topic: 'j:1', event: 'blob', data_b64: 'AA=A', offset: 4 }); // bad base64: ignored
    c.send(unhex('061e01740165ac020109')); // binary on a JSON connection: ignored
    c.send({ t: 'event', topic: 'j:1', event: 'blob', data_b64: '', offset: 5 });
    c.send({ t: 'event', topic: 'j:1', event: 'msg', data: { n: 6 }, offset: 6 });
    await waitFor(() => seen.length >= 5, 'five events');
    eq('json: data_b64 events are Uint8Arrays', seen, [['blob', 'bytes:ffef', 1], ['msg', 2, 2], ['blob', 'bytes:000102ff', 3], ['blob', 'bytes:', 5], ['msg', { n: 6 }, 6]]);
    eq('json: bad base64 and a binary message logged', [logs.filter((l) => l.includes('malformed JSON')).length, logs.filter((l) => l.includes('binary message on a JSON')).length], [1, 1]);

    const p1 = settle(ch.push('up', new Uint8Array([0, 1, 2, 255])));
    const m1 = await c.next('push bytes');
    eq('json: push of a Uint8Array sends data_b64', { t: m1.t, event: m1.event, data_b64: m1.data_b64, hasData: 'data' in m1 }, { t: 'push', event: 'up', data_b64: 'AAEC/w==', hasData: false });
    c.send({ t: 'reply', ref: m1.ref, topic: 'j:1', status: 'ok', data_b64: 'aGk=' });
    const r1 = await within(p1, STEP, 'push');
    eq('json: data_b64 reply resolves with a Uint8Array', r1.ok && bytesOf(r1.value), 'bytes:6869');
    const p2 = settle(ch.push('up', new Uint8Array(0)));
    const m2 = await c.next('push empty bytes');
    eq('json: empty bytes', m2.data_b64, '');
    c.reply(m2.ref, null, 'j:1');
    await within(p2, STEP, 'push');

    ch.onPush('thumb', (data) => {
      const out = new ArrayBuffer(2);
      new Uint8Array(out).set([data.length, data[0]]);
      return out;
    });
    c.send({ t: 'push', ref: 5, topic: 'j:1', event: 'thumb', data_b64: 'BwgJ' });
    const a = await c.next('reply');
    eq('json: server push of bytes answered with an ArrayBuffer', { ref: a.ref, status: a.status, data_b64: a.data_b64, hasData: 'data' in a }, { ref: 5, status: 'ok', data_b64: 'Awc=', hasData: false });
  });
}

async function testBinaryHeartbeat() {
  await withServer('binary_heartbeat', { encoding: 'binary', heartbeatInterval: 40, timeout: 1000 }, async (srv, socket) => {
    socket.connect();
    const c = await srv.conn(0);
    const p1 = await c.next('first ping');
    eq('binary: first ping bytes', p1.hex, '050101');
    c.send({ t: 'reply', ref: p1.ref, status: 'ok' });
    const p2 = await c.next('second ping');
    eq('binary: second ping bytes', p2.hex, '050102');
  });
}

async function testBinaryFallback() {
  // A server that answers no subprotocol speaks JSON: so does the client.
  // (Node's ws refuses such an answer to a client that offered one, so the
  // client here offers none, as an old server would see it.)
  class NoProtocolWebSocket extends WebSocket {
    constructor(url) {
      super(url, []);
    }
  }
  await withServer('binary_fallback', { encoding: 'binary', WebSocket: NoProtocolWebSocket }, async (srv, socket, logs) => {
    socket.connect();
    const c = await srv.conn(0);
    eq('fallback: no subprotocol', c.protocol, '');
    const ch = socket.channel('f:1');
    const joined = ch.join();
    const j = await c.next('join');
    eq('fallback: join in JSON', { binary: j.binary, t: j.t, topic: j.topic }, { binary: undefined, t: 'join', topic: 'f:1' });
    c.reply(j.ref, { epoch: 'F', offset: 0, recovered: false, history: [] }, 'f:1');
    await within(joined, STEP, 'join()');
    const p = settle(ch.push('up', new Uint8Array([1])));
    const m = await c.next('push');
    eq('fallback: bytes as data_b64', m.data_b64, 'AQ==');
    c.reply(m.ref, 1, 'f:1');
    await within(p, STEP, 'push');
    check('fallback: logged', logs.some((l) => l.includes('server chose none')), logs, 'a warning');
  });
}

async function main() {
  const tests = [
    testJoinHistory, testJoinRefused, testPushes, testServerPush, testPresence, testReconnect,
    testBackoffGrows, testBuffer, () => testNoReconnect(4429), () => testNoReconnect(1008), testHeartbeat,
    testCodec, testBinarySocket, testBinaryOffline, testJSONBytes, testBinaryHeartbeat, testBinaryFallback,
  ];
  for (const t of tests) await t();
  emit({ done: true, passed, failed });
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

// Bound the whole run whatever happens.
setTimeout(() => {
  emit({ check: 'overall', ok: false, error: 'client_unit.js took more than 45 s' });
  process.exit(1);
}, 45000).unref();

main().catch((err) => {
  emit({ check: 'main', ok: false, error: String((err && err.stack) || err) });
  process.exit(1);
});
