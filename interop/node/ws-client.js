'use strict';
// A Node `ws` client run by wsactor's Go interop tests (interop/wsclient_test.go).
//
//   node ws-client.js URL SCENARIO
//
// Environment:
//   PMD      JSON for ws's perMessageDeflate option: "true" (ws's default offer:
//            permessage-deflate; client_max_window_bits), "false", or an
//            options object such as {"serverMaxWindowBits":10}. Default "true".
//   LIMIT    the server's read limit in bytes (scenario "limit").
//   PINGS    how many server pings the heartbeat scenarios ask for.
//   HB_MS    the heartbeat timeout: ws's README client pattern terminates the
//            connection when no ping arrived for this long.
//   PROTOCOLS  comma-separated subprotocols to offer (default none).
//   CLOSE_CMD  the command scenario "close-server" sends (default
//            "!close 4002 later").
//   BURST    how many messages scenario "burst" sends without waiting.
//
// Every observation is printed to stdout as one JSON object per line; the Go
// test asserts on them. The script only sequences the scenario: it waits
// (bounded) for what it needs next and exits 0 once the scenario has run to
// its end, 2 when a wait timed out, 1 on an unexpected error.
const crypto = require('crypto');
const WebSocket = require('ws');

const [url, scenario] = process.argv.slice(2);
const pmd = JSON.parse(process.env.PMD || 'true');
const WAIT_MS = 15000;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function summary(data, isBinary) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const out = {
    type: isBinary ? 'binary' : 'text',
    len: buf.length,
    sha256: crypto.createHash('sha256').update(buf).digest('hex'),
  };
  if (!isBinary && buf.length <= 64) out.text = buf.toString('utf8');
  return out;
}

// Inbox queues events by kind so the scenario can await them in order.
class Inbox {
  constructor() {
    this.items = new Map();
    this.waiters = new Map();
  }
  push(kind, value) {
    const w = this.waiters.get(kind);
    if (w && w.length) {
      w.shift()(value);
      return;
    }
    if (!this.items.has(kind)) this.items.set(kind, []);
    this.items.get(kind).push(value);
  }
  next(kind) {
    const q = this.items.get(kind);
    if (q && q.length) return Promise.resolve(q.shift());
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        emit({ event: 'timeout', waiting: kind });
        process.exit(2);
      }, WAIT_MS);
      if (!this.waiters.has(kind)) this.waiters.set(kind, []);
      this.waiters.get(kind).push((v) => {
        clearTimeout(timer);
        resolve(v);
      });
    });
  }
}

// Deterministic payloads; the Go test builds the same ones.
const SMALL_TEXT = 'hello wsactor \u2603';
const SMALL_BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const BIG_TEXT = 'wsactor interop '.repeat(1024); // 16 KiB, compressible
const BIG_BINARY = Buffer.from(Array.from({ length: 16384 }, (_, i) => i % 16));

function send(ws, data, opts) {
  return new Promise((resolve, reject) => {
    ws.send(data, opts || {}, (err) => (err ? reject(err) : resolve()));
  });
}

async function main() {
  const inbox = new Inbox();
  const protocols = process.env.PROTOCOLS ? process.env.PROTOCOLS.split(',') : [];
  const ws = new WebSocket(url, protocols, { perMessageDeflate: pmd });
  let responseExtensions = '';
  ws.on('upgrade', (res) => {
    responseExtensions = res.headers['sec-websocket-extensions'] || '';
  });
  ws.on('error', (err) => {
    emit({ event: 'error', error: String(err && err.message) });
  });
  ws.on('message', (data, isBinary) => {
    const s = summary(data, isBinary);
    if (scenario !== 'burst') emit({ event: 'message', ...s });
    inbox.push('message', s);
  });
  ws.on('ping', (data) => {
    emit({ event: 'ping', data: data.toString() });
    inbox.push('ping', data.toString());
  });
  ws.on('pong', (data) => {
    emit({ event: 'pong', data: data.toString() });
    inbox.push('pong', data.toString());
  });
  ws.on('close', (code, reason) => {
    const sock = ws._socket;
    emit({
      event: 'close',
      code,
      reason: reason.toString(),
      bytesRead: sock ? sock.bytesRead : -1,
      bytesWritten: sock ? sock.bytesWritten : -1,
    });
    inbox.push('close', { code, reason: reason.toString() });
  });
  const opened = await new Promise((resolve) => {
    const onError = (err) => {
      // The handshake failed on ws's side: report it and end the scenario.
      emit({ event: 'handshake-error', error: String(err && err.message) });
      resolve(false);
    };
    ws.once('error', onError);
    ws.once('open', () => {
      ws.removeListener('error', onError);
      resolve(true);
    });
  });
  if (!opened) {
    emit({ event: 'done' });
    return;
  }
  // ws.extensions names the negotiated extensions; response is the server's
  // Sec-WebSocket-Extensions header as received.
  emit({ event: 'open', extensions: ws.extensions, response: responseExtensions, protocol: ws.protocol });

  switch (scenario) {
    case 'echo': {
      await send(ws, '');
      await inbox.next('message');
      await send(ws, Buffer.alloc(0));
      await inbox.next('message');
      await send(ws, SMALL_TEXT);
      await inbox.next('message');
      await send(ws, SMALL_BINARY);
      await inbox.next('message');
      await send(ws, BIG_TEXT);
      await inbox.next('message');
      await send(ws, BIG_BINARY);
      await inbox.next('message');
      ws.close(1000, 'done');
      await inbox.next('close');
      break;
    }
    case 'fragments': {
      // A text message in three fragments, with a ping between two of them
      // (a control frame interleaved in a fragmented message) and the
      // snowman's UTF-8 bytes split across the last two fragments.
      const snow = Buffer.from('\u2603');
      await send(ws, Buffer.from('frag-'), { binary: false, fin: false });
      ws.ping('mid-message');
      await send(ws, Buffer.concat([Buffer.from('ment-'), snow.subarray(0, 1)]), { binary: false, fin: false });
      await send(ws, Buffer.concat([snow.subarray(1), Buffer.from('-ed')]), { binary: false, fin: true });
      await inbox.next('pong');
      await inbox.next('message');
      // A binary message in four fragments (the first over ws's compression
      // threshold, so with permessage-deflate the whole message is compressed).
      for (let i = 0; i < 4; i++) {
        await send(ws, BIG_BINARY.subarray(i * 4096, (i + 1) * 4096), { binary: true, fin: i === 3 });
      }
      await inbox.next('message');
      ws.close(1000, 'done');
      await inbox.next('close');
      break;
    }
    case 'limit': {
      const limit = Number(process.env.LIMIT);
      await send(ws, 'a'.repeat(limit));
      await inbox.next('message');
      await send(ws, Buffer.alloc(limit + 1, 0x62));
      await inbox.next('close');
      break;
    }
    case 'ping': {
      ws.ping('client-ping');
      await inbox.next('pong');
      await send(ws, '!ping server-ping');
      await inbox.next('ping');
      ws.close(1000, 'done');
      await inbox.next('close');
      break;
    }
    case 'heartbeat':
    case 'heartbeat-lost': {
      // ws's README client heartbeat: every ping (and the open) re-arms a
      // timer; when it fires, the connection is terminated.
      const hbMs = Number(process.env.HB_MS);
      const want = Number(process.env.PINGS);
      let pings = 0;
      let terminated = false;
      const heartbeat = () => {
        clearTimeout(ws.pingTimeout);
        ws.pingTimeout = setTimeout(() => {
          terminated = true;
          ws.terminate();
        }, hbMs);
      };
      heartbeat();
      ws.on('ping', () => {
        pings++;
        heartbeat();
      });
      ws.on('close', () => clearTimeout(ws.pingTimeout));
      await send(ws, `!heartbeat ${want}`);
      if (scenario === 'heartbeat') {
        for (let i = 0; i < want; i++) await inbox.next('ping');
        clearTimeout(ws.pingTimeout);
        ws.close(1000, 'done');
      }
      await inbox.next('close');
      emit({ event: 'heartbeat', pings, terminated });
      break;
    }
    case 'close-client': {
      ws.close(4001, 'bye');
      await inbox.next('close');
      break;
    }
    case 'wait-close': {
      // Stay connected until the server closes.
      await inbox.next('close');
      break;
    }
    case 'close-client-no-code': {
      ws.close(); // a close frame without a status code
      await inbox.next('close');
      break;
    }
    case 'close-server': {
      await send(ws, process.env.CLOSE_CMD || '!close 4002 later');
      await inbox.next('close');
      break;
    }
    case 'burst': {
      // Many messages back to back (every tenth one 2 KiB, over ws's
      // compression threshold), then every echo, which must come back in
      // order.
      const n = Number(process.env.BURST);
      const payload = (i) => (i % 10 === 9 ? `m-${i} ` + 'x'.repeat(2048) : `m-${i}`);
      for (let i = 0; i < n; i++) ws.send(payload(i));
      let mismatches = 0;
      let first = -1;
      for (let i = 0; i < n; i++) {
        const m = await inbox.next('message');
        const want = summary(Buffer.from(payload(i)), false);
        if (m.sha256 !== want.sha256 || m.type !== 'text') {
          mismatches++;
          if (first < 0) first = i;
        }
      }
      emit({ event: 'burst', received: n, mismatches, firstMismatch: first });
      ws.close(1000, 'done');
      await inbox.next('close');
      break;
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  emit({ event: 'done' });
}

main().then(
  () => process.exit(0),
  (err) => {
    emit({ event: 'error', error: String((err && err.stack) || err) });
    process.exit(1);
  },
);
