'use strict';
// The chat page: one WebSocket to /ws speaking the JSON protocol described in
// examples/chat/README.md. When the connection drops (the server restarted,
// the network went away) it reconnects with capped exponential backoff and
// full jitter, and joins its room again.

const PING_EVERY = 25000; // browsers answer WebSocket pings but cannot send them:
const PONG_WITHIN = 10000; // an application-level ping notices a dead server
const BACKOFF_BASE = 500;
const BACKOFF_CAP = 15000;
// Close codes that say this page is at fault: reconnecting would not help.
const FATAL = new Set([1003, 1007, 1008, 1009]);

const $ = (sel) => document.querySelector(sel);
const chat = {
  room: '',
  name: '',
  ws: null,
  attempt: 0, // reconnect attempts since the last successful join
  retry: 0, // reconnect timer
  ping: 0, // ping interval
  pong: 0, // pong deadline
  reconnecting: false,
  joins: 0, // successful joins, reconnects included (data-joins, for tests)
};

function setState(state, text) {
  document.body.dataset.state = state;
  $('#status').textContent = text;
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const ws = new WebSocket(scheme + location.host + '/ws');
  chat.ws = ws;
  setState('connecting', 'connecting…');
  ws.onopen = () => {
    send({ type: 'join', room: chat.room, name: chat.name });
    chat.ping = setInterval(ping, PING_EVERY);
  };
  ws.onmessage = (ev) => receive(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    if (chat.ws === ws) lost(ev.code, ev.reason);
  };
}

function send(msg) {
  if (chat.ws && chat.ws.readyState === WebSocket.OPEN) chat.ws.send(JSON.stringify(msg));
}

function ping() {
  send({ type: 'ping' });
  clearTimeout(chat.pong);
  chat.pong = setTimeout(() => {
    const ws = chat.ws;
    lost(1006, 'the server does not answer');
    ws.close();
  }, PONG_WITHIN);
}

function stopTimers() {
  clearInterval(chat.ping);
  clearTimeout(chat.pong);
  clearTimeout(chat.retry);
}

// lost handles the end of a connection we did not close ourselves.
function lost(code, reason) {
  stopTimers();
  chat.ws = null;
  const why = `${code}${reason ? ' ' + reason : ''}`;
  if (FATAL.has(code)) {
    setState('error', `closed: ${why}`);
    notice(`the server closed the connection: ${why}`, 'error');
    return;
  }
  // Full jitter: a random delay up to the capped exponential backoff, so a
  // restarted server is not hit by every page at once.
  const delay = Math.random() * Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** chat.attempt);
  chat.attempt++;
  if (!chat.reconnecting) notice(`disconnected (${why}); reconnecting`);
  chat.reconnecting = true;
  setState('reconnecting', `reconnecting in ${(delay / 1000).toFixed(1)} s`);
  chat.retry = setTimeout(connect, delay);
}

function receive(msg) {
  switch (msg.type) {
    case 'welcome':
      chat.attempt = 0;
      chat.joins++;
      document.body.dataset.joins = String(chat.joins);
      setState('joined', 'connected');
      $('#where').textContent = `#${msg.room} as ${msg.name}`;
      notice(chat.reconnecting ? `reconnected to #${msg.room}` : `you joined #${msg.room}`);
      chat.reconnecting = false;
      break;
    case 'presence':
      renderPeople(msg.members);
      break;
    case 'joined':
      notice(`${msg.name} joined`);
      break;
    case 'left':
      notice(`${msg.name} left`);
      break;
    case 'message':
      addMessage(msg);
      break;
    case 'pong':
      clearTimeout(chat.pong);
      break;
    case 'error':
      notice(msg.error, 'error');
      if (document.body.dataset.state !== 'joined') leave(msg.error); // the join was refused
      break;
  }
}

function append(li) {
  const list = $('#messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

function addMessage(msg) {
  const li = document.createElement('li');
  li.className = 'message';
  const time = new Date(msg.time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  li.append(span('time', time), span('name', msg.name), span('text', msg.text));
  append(li);
}

function notice(text, cls = 'notice') {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = text;
  append(li);
}

function renderPeople(members) {
  const ul = $('#people');
  ul.replaceChildren(
    ...members.map((m) => {
      const li = document.createElement('li');
      li.append(m.name);
      if (m.name === chat.name) li.append(' ', span('tabs', '(you)'));
      if (m.tabs > 1) li.append(' ', span('tabs', `(${m.tabs} tabs)`));
      return li;
    }),
  );
}

// join shows the chat and connects; leave goes back to the form.
function join(room, name) {
  chat.room = room;
  chat.name = name;
  chat.attempt = 0;
  chat.reconnecting = false;
  localStorage.setItem('wsactor-chat-name', name);
  history.replaceState(null, '', '#' + room);
  $('#messages').replaceChildren();
  $('#people').replaceChildren();
  $('#join-form').hidden = true;
  $('#chat').hidden = false;
  $('#leave').hidden = false;
  connect();
  $('#text').focus();
}

function leave(why) {
  const ws = chat.ws;
  chat.ws = null;
  stopTimers();
  if (ws) ws.close(1000, 'bye');
  $('#chat').hidden = true;
  $('#leave').hidden = true;
  $('#join-form').hidden = false;
  $('#where').textContent = '';
  setState('idle', why ? `not connected: ${why}` : 'not connected');
  loadRooms();
}

// loadRooms fills the room picker with the rooms people are in.
async function loadRooms() {
  try {
    const rooms = await (await fetch('/rooms')).json();
    $('#room-list').replaceChildren(...rooms.map((r) => new Option(r.name)));
    $('#rooms').replaceChildren(
      ...rooms.map((r) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = `#${r.name} (${r.people})`;
        b.onclick = () => ($('#room').value = r.name);
        return b;
      }),
    );
  } catch {
    // The server is not there; the picker stays as it was.
  }
}

$('#join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  join($('#room').value.trim().toLowerCase(), $('#name').value.trim());
});

$('#say-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('#text').value.trim();
  if (text === '' || document.body.dataset.state !== 'joined') return;
  send({ type: 'say', text });
  $('#text').value = '';
});

$('#leave').addEventListener('click', () => leave());

$('#name').value = localStorage.getItem('wsactor-chat-name') || `guest-${Math.floor(Math.random() * 9000) + 1000}`;
$('#room').value = decodeURIComponent(location.hash.slice(1)) || 'lobby';
loadRooms();
setInterval(() => {
  if (!$('#join-form').hidden) loadRooms();
}, 5000);
