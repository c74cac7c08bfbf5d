// The chat page. It speaks the channels protocol (docs/channels-protocol.md)
// through wsactor's browser client, which the server serves at /wsactor/.
// The client does the hard parts: it reconnects with backoff and full
// jitter, joins the room again with the position it had, gets exactly the
// messages it missed (each once), answers every push with a promise, and
// keeps the presence list. This file only draws.
import { Socket, Presence } from '/wsactor/wsactor-channel.js';

const HISTORY = 50; // messages shown on joining (the server keeps 50)
const MAX_NAME = 24; // the server's limits, checked before connecting
const ROOM = /^[a-z0-9_-]{1,32}$/;

const $ = (sel) => document.querySelector(sel);
const chat = {
  room: '',
  name: '',
  socket: null, // the Socket of the room we are in, null on the form
  channel: null, // its Channel, "room:<name>"
  joins: 0, // successful joins, rejoins included (data-joins, for tests)
  away: false, // the connection dropped since the last join
  quiet: false, // presence is being resynced after a join: no join/leave notices
};

function setState(state, text) {
  document.body.dataset.state = state;
  $('#status').textContent = text;
}

// join shows the chat and connects: one Socket, one Channel, one Presence.
function join(room, name) {
  Object.assign(chat, { room, name, joins: 0, away: false, quiet: false });
  document.body.dataset.joins = '0';
  localStorage.setItem('wsactor-chat-name', name);
  history.replaceState(null, '', '#' + room);
  $('#messages').replaceChildren();
  $('#people').replaceChildren();
  $('#join-form').hidden = true;
  $('#chat').hidden = false;
  $('#leave').hidden = false;
  $('#where').textContent = `#${room} as ${name}`;

  // The nickname goes in the URL at every connect: /ws?name=alice.
  const socket = new Socket('/ws', { params: { name } });
  const channel = socket.channel('room:' + room, { history: HISTORY });
  chat.socket = socket;
  chat.channel = channel;
  const mine = () => chat.socket === socket; // callbacks of a room we left do nothing

  // Every message once, in order: the join's history, then live ones, and
  // after a reconnect the ones missed meanwhile.
  channel.on('msg', (m, meta) => mine() && addMessage(m, meta.history));
  channel.onJoin((reply) => mine() && joined(reply));
  channel.onError((err) => mine() && leave(`cannot join #${room}: ${err.message}`));

  // Presence is keyed by nickname; each key has one meta per tab.
  const presence = new Presence(channel);
  presence.onJoin((key, before) => {
    if (mine() && !before && !chat.quiet) notice(`${key} joined`);
  });
  presence.onLeave((key, after) => {
    if (mine() && after.metas.length === 0 && !chat.quiet) notice(`${key} left`);
  });
  presence.onSync(() => {
    if (!mine()) return;
    chat.quiet = false;
    renderPeople(presence.list());
  });

  socket.onClose(({ code, reason, reconnect }) => {
    if (!mine()) return;
    const why = `${code}${reason ? ' ' + reason : ''}`;
    if (!reconnect) {
      setState('error', `closed: ${why}`);
      notice(`the server closed the connection: ${why}`, 'error');
      return;
    }
    if (!chat.away) notice(`disconnected (${why}); reconnecting`);
    chat.away = true;
    setState('reconnecting', 'reconnecting…');
  });

  setState('connecting', 'connecting…');
  socket.connect();
  channel.join().catch(() => {}); // failures reach onError, or it keeps trying
  $('#text').focus();
}

// joined runs after every join, before the history it brought is shown.
function joined(reply) {
  chat.joins++;
  document.body.dataset.joins = String(chat.joins);
  chat.quiet = true; // the presence state that follows is not news
  setState('joined', 'connected');
  const n = reply.history.length;
  const messages = `${n} missed message${n === 1 ? '' : 's'}`;
  if (chat.joins === 1) {
    if (n > 0) notice(`the last ${n} message${n === 1 ? '' : 's'} in #${chat.room}:`);
    // After the history, which is shown once this callback returns.
    queueMicrotask(() => notice(`you joined #${chat.room}`));
  } else if (reply.recovered) {
    notice(`reconnected to #${chat.room}, recovered ${messages}`);
  } else {
    // The room's history could not be resumed (the server lost it, or it
    // moved on too far): what was said meanwhile is not here.
    const li = notice(`reconnected to #${chat.room}, but messages sent meanwhile are lost (${reply.reason}): `);
    const a = document.createElement('a');
    a.href = location.href;
    a.textContent = 'reload';
    li.append(a);
  }
  chat.away = false;
}

// leave goes back to the form.
function leave(why) {
  const { socket, channel } = chat;
  chat.socket = chat.channel = null;
  if (channel) channel.leave().finally(() => socket.disconnect());
  $('#chat').hidden = true;
  $('#leave').hidden = true;
  $('#join-form').hidden = false;
  $('#where').textContent = '';
  setState(why ? 'error' : 'idle', why ? `not connected: ${why}` : 'not connected');
  loadRooms();
}

function append(li) {
  const list = $('#messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
  return li;
}

function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

// addMessage shows one "msg" event: {from, text, time}.
function addMessage(m, fromHistory) {
  const li = document.createElement('li');
  li.className = fromHistory ? 'message history' : 'message';
  const time = new Date(m.time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  li.append(span('time', time), span('name', m.from), span('text', m.text));
  append(li);
}

function notice(text, cls = 'notice') {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = text;
  return append(li);
}

// renderPeople draws the presence list: one line per nickname, with its
// number of tabs.
function renderPeople(list) {
  list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  $('#people').replaceChildren(
    ...list.map(({ key, metas }) => {
      const li = document.createElement('li');
      li.append(key);
      if (key === chat.name) li.append(' ', span('tabs', '(you)'));
      if (metas.length > 1) li.append(' ', span('tabs', `(${metas.length} tabs)`));
      return li;
    }),
  );
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
  const name = $('#name').value.trim();
  const room = $('#room').value.trim().toLowerCase();
  // The server refuses these too, but a refused WebSocket handshake looks
  // like a network failure to a page, which would retry for ever.
  if ([...name].length === 0 || [...name].length > MAX_NAME || /\p{Cc}/u.test(name)) {
    setState('error', `a nickname is 1 to ${MAX_NAME} printable characters`);
    return;
  }
  if (!ROOM.test(room)) {
    setState('error', "a room name is 1 to 32 of a-z, 0-9, '-' and '_'");
    return;
  }
  join(room, name);
});

// Saying something is a push answered by the server: the message comes
// back as an event (to everyone), a refusal as an error shown here. While
// reconnecting, the client keeps the push and sends it once joined again.
$('#say-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('#text').value.trim();
  if (text === '' || !chat.channel) return;
  $('#text').value = '';
  chat.channel.push('msg', { text }).catch((err) => {
    const quote = text.length > 40 ? text.slice(0, 40) + '…' : text;
    notice(`not sent (${err.code}: ${err.message}): “${quote}”`, 'error');
  });
});

$('#leave').addEventListener('click', () => leave());

$('#name').value = localStorage.getItem('wsactor-chat-name') || `guest-${Math.floor(Math.random() * 9000) + 1000}`;
$('#room').value = decodeURIComponent(location.hash.slice(1)) || 'lobby';
loadRooms();
setInterval(() => {
  if (!$('#join-form').hidden) loadRooms();
}, 5000);
