'use strict';
// Peer server for bench/wsbench: Node's ws with the README's broadcast loop,
// per room. GET /ws?room=NAME; every message a client sends goes to every
// member of its room, the sender included.
//
//   node server.js [--port N] [--deflate]     (or PORT=N, DEFLATE=1)
//
// Listens on 127.0.0.1 (port 0 = any free port) and prints
// "listening 127.0.0.1:PORT" on stdout.
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const args = process.argv.slice(2);
let port = Number(process.env.PORT || 0);
let deflate = process.env.DEFLATE === '1';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port' || args[i] === '-port') port = Number(args[++i]);
  else if (args[i] === '--deflate' || args[i] === '-deflate') deflate = true;
  else { console.error(`unknown argument ${args[i]}`); process.exit(2); }
}

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket endpoint: /ws?room=NAME\n');
});
const wss = new WebSocketServer({
  server,
  path: '/ws',
  maxPayload: 1 << 20,
  // Same settings as the Go peers: level 1 (BestSpeed), 1 KiB threshold.
  perMessageDeflate: deflate ? { zlibDeflateOptions: { level: 1 }, threshold: 1024 } : false,
});

const rooms = new Map(); // name -> Set<WebSocket>

wss.on('connection', (ws, req) => {
  const name = new URL(req.url, 'http://x').searchParams.get('room') || 'default';
  let room = rooms.get(name);
  if (!room) {
    room = new Set();
    rooms.set(name, room);
  }
  room.add(ws);
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    // The ws README's "broadcast to all clients, including itself" loop.
    room.forEach((client) => {
      if (client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0 && rooms.get(name) === room) rooms.delete(name);
  });
});

server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  console.log(`listening ${a.address}:${a.port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
