'use strict';
// A subscriber of the browser client (channel/client/wsactor-channel.js)
// under Node, for TestClusterBrowserClient (cluster_test.go): it joins one
// topic and prints one JSON line per thing that happens, so that the Go
// test can check what the client went through while the topic's owner node
// died:
//
//   {"ready":true}                       joined the first time
//   {"join":{"recovered":b,"reason":s,"epoch":s,"offset":n}}
//   {"left":"stopped"}
//   {"event":n,"offset":n,"history":b}
//
//   NODE_PATH=interop/node/node_modules node cluster_sub.js <ws url> <topic>
const path = require('path');
const { WebSocket } = require('ws');

const CLIENT = path.join(__dirname, '..', 'client', 'wsactor-channel.js');

async function loadClient() {
  return import(CLIENT).catch(() => {
    const src = require('fs').readFileSync(CLIENT);
    return import('data:text/javascript;base64,' + src.toString('base64'));
  });
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

(async () => {
  const { Socket } = await loadClient();
  const [url, topic] = process.argv.slice(2);
  const socket = new Socket(url, { WebSocket, reconnect: { min: 20, max: 200 }, heartbeatInterval: 0 });
  const ch = socket.channel(topic);
  ch.onJoin((r) => emit({ join: { recovered: r.recovered, reason: r.reason || '', epoch: r.epoch, offset: r.offset } }));
  ch.onLeft((e) => emit({ left: e.reason }));
  ch.on('*', (data, meta) => emit({ event: data, offset: meta.offset, history: !!meta.history }));
  socket.connect();
  await ch.join();
  emit({ ready: true });
  // Runs until the test closes stdin.
  process.stdin.on('end', () => {
    socket.disconnect();
    process.exit(0);
  });
  process.stdin.resume();
})().catch((err) => {
  emit({ error: String((err && err.stack) || err) });
  process.exit(1);
});
