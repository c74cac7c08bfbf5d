// Peer server for bench/wsbench: Bun's built-in WebSocket pub/sub (uWebSockets
// underneath). GET /ws?room=NAME subscribes the socket to topic NAME; every
// message is published to the topic, so every member gets it, the sender
// included (server.publish, unlike ws.publish, does not skip the sender).
//
//   bun server.js [--port N] [--deflate]     (or PORT=N, DEFLATE=1)
//
// Listens on 127.0.0.1 (port 0 = any free port) and prints
// "listening 127.0.0.1:PORT" on stdout.
const args = process.argv.slice(2);
let port = Number(process.env.PORT || 0);
let deflate = process.env.DEFLATE === '1';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port' || args[i] === '-port') port = Number(args[++i]);
  else if (args[i] === '--deflate' || args[i] === '-deflate') deflate = true;
  else { console.error(`unknown argument ${args[i]}`); process.exit(2); }
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname !== '/ws') return new Response('not found\n', { status: 404 });
    const room = url.searchParams.get('room') || 'default';
    if (server.upgrade(req, { data: { room } })) return undefined;
    return new Response('WebSocket endpoint: /ws?room=NAME\n', { status: 426 });
  },
  websocket: {
    maxPayloadLength: 1 << 20,
    // Bun's permessage-deflate is uWebSockets' shared compressor (no
    // per-socket window); its level is not configurable.
    perMessageDeflate: deflate,
    open(ws) {
      ws.subscribe(ws.data.room);
    },
    message(ws, message) {
      server.publish(ws.data.room, message);
    },
  },
});

console.log(`listening 127.0.0.1:${server.port}`);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
