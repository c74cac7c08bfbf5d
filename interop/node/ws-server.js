'use strict';
// A Node `ws` server (ws.WebSocketServer) run by wsactor's Go interop tests
// (interop/wsserver_test.go) as the peer of wsactor's client.
//
//   node ws-server.js
//
// Environment:
//   PMD           JSON for ws's perMessageDeflate option ("true", "false" or an
//                 options object). Default "false", as ws's server default.
//   HEARTBEAT_MS  when > 0, runs ws's README server heartbeat (isAlive sweep)
//                 at this interval: every sweep terminates connections that
//                 did not answer the previous ping, then pings the others.
//
// It listens on 127.0.0.1 on a free port and prints {"event":"listening",
// "port":N} first, then one JSON object per line for every observation. It
// echoes every data message except text commands starting with "!":
//   !close CODE REASON   close with that code and reason
//   !ping DATA           send a ping with DATA
//   !big N               send a binary message of N bytes ('b')
//   !frag                send a fragmented text message ("frag-ment-☃-ed",
//                        the snowman split across fragments), then a
//                        fragmented 16 KiB binary message (4 fragments)
// It exits when stdin ends (the Go test closes it) or on SIGTERM.
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

const pmd = JSON.parse(process.env.PMD || 'false');
const heartbeatMs = Number(process.env.HEARTBEAT_MS || 0);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function summary(data, isBinary) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
  const out = {
    type: isBinary ? 'binary' : 'text',
    len: buf.length,
    sha256: crypto.createHash('sha256').update(buf).digest('hex'),
  };
  if (!isBinary && buf.length <= 64) out.text = buf.toString('utf8');
  return out;
}

const BIG_BINARY = Buffer.from(Array.from({ length: 16384 }, (_, i) => i % 16));

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: pmd });
let nextId = 0;

function heartbeat() {
  this.isAlive = true;
}

wss.on('connection', (ws, req) => {
  const id = ++nextId;
  ws.id = id;
  ws.isAlive = true;
  emit({
    event: 'connection',
    id,
    offered: req.headers['sec-websocket-extensions'] || '',
    extensions: ws.extensions,
  });
  ws.on('error', (err) => emit({ event: 'error', id, error: String(err && err.message) }));
  ws.on('pong', heartbeat);
  ws.on('pong', (data) => emit({ event: 'pong', id, data: data.toString() }));
  ws.on('ping', (data) => emit({ event: 'ping', id, data: data.toString() }));
  ws.on('close', (code, reason) => {
    const sock = ws._socket;
    emit({
      event: 'close',
      id,
      code,
      reason: reason.toString(),
      bytesRead: sock ? sock.bytesRead : -1,
      bytesWritten: sock ? sock.bytesWritten : -1,
    });
  });
  ws.on('message', (data, isBinary) => {
    emit({ event: 'message', id, ...summary(data, isBinary) });
    const text = isBinary ? '' : data.toString();
    if (!text.startsWith('!')) {
      ws.send(data, { binary: isBinary });
      return;
    }
    const [cmd, ...args] = text.split(' ');
    switch (cmd) {
      case '!close':
        ws.close(Number(args[0]), args.slice(1).join(' '));
        break;
      case '!ping':
        ws.ping(args.join(' '));
        break;
      case '!big':
        ws.send(Buffer.alloc(Number(args[0]), 0x62), { binary: true });
        break;
      case '!frag': {
        const snow = Buffer.from('\u2603');
        ws.send(Buffer.from('frag-'), { binary: false, fin: false });
        ws.send(Buffer.concat([Buffer.from('ment-'), snow.subarray(0, 1)]), { binary: false, fin: false });
        ws.send(Buffer.concat([snow.subarray(1), Buffer.from('-ed')]), { binary: false, fin: true });
        for (let i = 0; i < 4; i++) {
          ws.send(BIG_BINARY.subarray(i * 4096, (i + 1) * 4096), { binary: true, fin: i === 3 });
        }
        break;
      }
      default:
        ws.close(1003, `unknown command ${cmd}`);
    }
  });
});

// ws's README server heartbeat.
let interval;
if (heartbeatMs > 0) {
  interval = setInterval(function ping() {
    wss.clients.forEach(function each(ws) {
      if (ws.isAlive === false) {
        emit({ event: 'terminate', id: ws.id });
        return ws.terminate();
      }
      ws.isAlive = false;
      ws.ping();
    });
  }, heartbeatMs);
}

wss.on('listening', () => emit({ event: 'listening', port: wss.address().port }));

function shutdown() {
  clearInterval(interval);
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
}
process.stdin.on('end', shutdown);
process.stdin.resume();
process.on('SIGTERM', shutdown);
