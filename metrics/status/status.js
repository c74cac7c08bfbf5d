// The wsactor status page (package metrics, StatusPage): follows the live
// socket beside this page ("live", with the page's query string, so a
// ?token= reaches it) and renders each JSON snapshot with plain DOM.
// Reconnects with backoff when the socket drops. No libraries, no build.
'use strict';
(function () {
  const app = window.wsactorStatus = { state: 'connecting', connects: 0, snapshots: 0, last: null, ws: null };
  const $ = (id) => document.getElementById(id);
  const fmtInt = (n) => Number(n || 0).toLocaleString('en-US');

  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB'];
    let v = n, u = -1;
    do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
    return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[u];
  }

  function ago(at, now) {
    const s = Math.max(0, Math.round((now - at) / 1000));
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    return Math.floor(s / 3600) + 'h ago';
  }

  // row makes a table row of cells: a string, or [text, className].
  function row(cells, attrs) {
    const tr = document.createElement('tr');
    for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
    for (const c of cells) {
      const td = document.createElement('td');
      const [text, cls] = Array.isArray(c) ? c : [c, ''];
      td.textContent = text; // never innerHTML: topic names and reasons come from clients
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }

  function fill(id, rows, cols, empty) {
    const body = $(id).tBodies[0];
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = document.createElement('td');
      td.colSpan = cols;
      td.textContent = empty;
      tr.appendChild(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...rows);
  }

  function setState(state) {
    app.state = state;
    document.body.dataset.state = state;
    $('state').textContent = state;
  }

  function render(s) {
    const now = Date.parse(s.time);
    $('updated').textContent = 'updated ' + new Date(now).toLocaleTimeString('en-GB') + ', every ' + (s.interval_ms / 1000) + 's';
    $('connections').textContent = fmtInt(s.connections);
    const up = s.upgrades || {};
    let refused = 0;
    for (const [status, n] of Object.entries(up)) if (status !== '101') refused += n;
    $('upgraded').textContent = fmtInt(up['101']);
    $('refused').textContent = fmtInt(refused);
    $('closed').textContent = fmtInt((s.closes || []).reduce((a, c) => a + c.count, 0));

    if (s.topics) {
      document.body.dataset.hub = '';
      $('topics-count').textContent = fmtInt(s.topics.count);
      $('members').textContent = fmtInt(s.topics.members);
      $('topics-note').textContent = s.topics.count > s.topics.top.length ? '(top ' + s.topics.top.length + ' of ' + fmtInt(s.topics.count) + ')' : '';
      fill('topics', s.topics.top.map((t) => row([[t.name, 'wrap'], [fmtInt(t.members), 'num members']], { 'data-topic': t.name })), 2, 'no topics running');
    }

    fill('top', s.top.map((c) => row([
      c.remote, c.client_ip || '–', c.subprotocol || '–',
      [fmtInt(c.queued_messages), 'num'], [fmtBytes(c.queued_bytes), 'num'],
      [c.rtt_ms == null ? '–' : c.rtt_ms + ' ms', 'num'],
    ], { 'data-conn': c.remote })), 6, 'no connections');

    fill('recent', s.recent_closes.map((c) => row([
      ago(Date.parse(c.at), now), [String(c.code), 'num'], c.by_peer ? 'peer' : 'server', c.remote || '–', [c.reason, 'wrap'],
    ])), 5, 'none yet');
    fill('closes', s.closes.map((c) => row([c.code, c.side, [fmtInt(c.count), 'num']])), 3, 'none yet');
    const ups = Object.entries(up).sort((a, b) => Number(a[0]) - Number(b[0]));
    fill('upgrades', ups.map(([status, n]) => row([status, [fmtInt(n), 'num']])), 2, 'none yet');

    const max = Math.max(1, ...s.rtt.map((b) => b.count));
    $('rtt').replaceChildren(...s.rtt.map((b, i) => {
      const bar = document.createElement('div');
      bar.className = 'bar' + (i === s.rtt.length - 1 ? ' none' : '');
      bar.dataset.bucket = b.label;
      const label = document.createElement('span');
      label.textContent = b.label;
      const track = document.createElement('div');
      track.className = 'track';
      const f = document.createElement('div');
      f.className = 'fill';
      f.style.width = (100 * b.count / max) + '%';
      track.appendChild(f);
      const count = document.createElement('span');
      count.className = 'count';
      count.textContent = fmtInt(b.count);
      bar.append(label, track, count);
      return bar;
    }));
  }

  let delay = 250;
  function connect() {
    const u = new URL('live' + location.search, location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = app.ws = new WebSocket(u);
    ws.onopen = () => {
      app.connects++;
      delay = 250;
      setState('live');
    };
    ws.onmessage = (e) => {
      const s = JSON.parse(e.data);
      app.last = s;
      app.snapshots++;
      render(s);
    };
    ws.onclose = () => {
      if (app.ws !== ws) return;
      setState('reconnecting');
      const wait = delay / 2 + Math.random() * delay / 2; // jittered, doubling up to 10s
      delay = Math.min(delay * 2, 10000);
      setTimeout(connect, wait);
    };
  }
  // drop closes the live socket as a network failure would (for tests).
  app.drop = () => app.ws && app.ws.close(4000, 'dropped');
  connect();
})();
