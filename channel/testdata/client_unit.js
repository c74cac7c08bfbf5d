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
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
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
      const m = isBinary ? { binary: true } : JSON.parse(data.toString());
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

  send(m) {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
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
    await fn(srv, socket);
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

async function main() {
  const tests = [
    testJoinHistory, testJoinRefused, testPushes, testServerPush, testPresence, testReconnect,
    testBackoffGrows, testBuffer, () => testNoReconnect(4429), () => testNoReconnect(1008), testHeartbeat,
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
