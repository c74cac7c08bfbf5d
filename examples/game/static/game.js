'use strict';
// The game page: draws every snapshot the server sends, and sends the
// direction of the arrow keys (or WASD), or toward the finger or mouse held
// on the board, whenever it changes. The server owns
// the state; the page only draws it. After a disconnect it reconnects with
// capped exponential backoff and full jitter.

const KEYS = {
  ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
  a: [-1, 0], d: [1, 0], w: [0, -1], s: [0, 1],
};
const RADIUS = 10;

const canvas = document.querySelector('#board');
const draw2d = canvas.getContext('2d');
// window.game is the page's state, readable from the console (and tests).
const game = (window.game = {
  ws: null,
  me: 0, // our player id, from the welcome
  last: null, // the latest snapshot
  rendered: 0, // snapshots drawn
  dir: [0, 0], // the direction last sent
  attempt: 0,
  ping: 0,
});
const held = new Set();
let pointer = null; // where a finger or the mouse is held on the board, in board coordinates

function status(state, text) {
  document.body.dataset.state = state;
  document.querySelector('#status').textContent = text;
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const ws = new WebSocket(scheme + location.host + '/ws');
  game.ws = ws;
  ws.onopen = () => {
    game.dir = [0, 0];
    sendDirection();
    game.ping = setInterval(() => send({ type: 'ping' }), 25000);
  };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'welcome') {
      game.me = msg.id;
      game.attempt = 0;
      canvas.width = msg.width;
      canvas.height = msg.height;
      status('playing', `you are player ${msg.id}`);
    } else if (msg.type === 'state') {
      game.last = msg;
      render(msg);
      if (pointer) sendDirection(); // our dot moved: steer toward the pointer again
    }
  };
  ws.onclose = (ev) => {
    clearInterval(game.ping);
    const delay = Math.random() * Math.min(15000, 500 * 2 ** game.attempt++);
    status('reconnecting', `disconnected (${ev.code}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(connect, delay);
  };
}

function send(msg) {
  if (game.ws && game.ws.readyState === WebSocket.OPEN) game.ws.send(JSON.stringify(msg));
}

// sendDirection tells the server where the held keys point (or, with no key
// held, which way the held pointer is from our dot), if that changed.
function sendDirection() {
  let dx = 0;
  let dy = 0;
  for (const k of held) {
    dx += KEYS[k][0];
    dy += KEYS[k][1];
  }
  const me = game.last && game.last.players.find((p) => p.id === game.me);
  if (held.size === 0 && pointer && me) {
    const ex = pointer.x - me.x;
    const ey = pointer.y - me.y;
    dx = Math.abs(ex) > RADIUS ? ex : 0;
    dy = Math.abs(ey) > RADIUS ? ey : 0;
  }
  dx = Math.sign(dx);
  dy = Math.sign(dy);
  if (dx === game.dir[0] && dy === game.dir[1]) return;
  game.dir = [dx, dy];
  send({ type: 'input', dx, dy });
}

function render(snap) {
  draw2d.clearRect(0, 0, canvas.width, canvas.height);
  for (const p of snap.players) {
    draw2d.beginPath();
    draw2d.arc(p.x, p.y, RADIUS, 0, 2 * Math.PI);
    draw2d.fillStyle = p.color;
    draw2d.fill();
    if (p.id === game.me) {
      draw2d.beginPath();
      draw2d.arc(p.x, p.y, RADIUS + 4, 0, 2 * Math.PI);
      draw2d.strokeStyle = '#222';
      draw2d.lineWidth = 2;
      draw2d.stroke();
    }
  }
  draw2d.fillStyle = '#667';
  draw2d.font = '12px system-ui, sans-serif';
  draw2d.fillText(`tick ${snap.tick} · ${snap.players.length} player(s)`, 8, canvas.height - 8);
  game.rendered++;
}

function key(ev, down) {
  const k = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (!(k in KEYS)) return;
  ev.preventDefault();
  if (down) held.add(k);
  else held.delete(k);
  sendDirection();
}

addEventListener('keydown', (ev) => key(ev, true));
addEventListener('keyup', (ev) => key(ev, false));
addEventListener('blur', () => {
  held.clear();
  pointer = null;
  sendDirection();
});

// Touch (and mouse): hold a finger on the board and the dot moves toward it.
function aim(ev) {
  const r = canvas.getBoundingClientRect();
  pointer = { x: ((ev.clientX - r.left) * canvas.width) / r.width, y: ((ev.clientY - r.top) * canvas.height) / r.height };
  sendDirection();
}
canvas.addEventListener('pointerdown', (ev) => {
  canvas.setPointerCapture(ev.pointerId);
  aim(ev);
});
canvas.addEventListener('pointermove', (ev) => {
  if (pointer) aim(ev);
});
for (const type of ['pointerup', 'pointercancel']) {
  canvas.addEventListener(type, () => {
    pointer = null;
    sendDirection();
  });
}
connect();
