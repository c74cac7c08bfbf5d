'use strict';
// Drives the status page (metrics/status) in headless Chromium for
// TestStatusPageBrowser (status_test.go). playwright-core comes from
// interop/node/node_modules through NODE_PATH; Playwright never downloads a
// browser of its own.
//
//   node status.js SCREENSHOT PAGE_URL TOKEN FIRST THEN
//
// FIRST and THEN are JSON objects of what the page must show: "connections"
// (the count) and, for each other key, a topic's member count. The script
// gets PAGE_URL without the token (it must get 401), then with ?token=,
// waits until the page is live and shows FIRST, prints "shown" (the test
// then connects another client), waits until it shows THEN without a
// reload, drops the live socket and waits for the page to reconnect, takes
// the screenshot and prints "done". Also "console" and "pageerror" from the
// page, or "error" if a step failed. Environment: CHROMIUM, the browser
// binary (default /usr/bin/chromium).
const { chromium } = require('playwright-core');

const [shot, url, token, first, then] = process.argv.slice(2);
const STEP = 20000; // bound on every wait

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// shows is evaluated in the page: does it show want?
function shows(want) {
  const text = (sel) => { const el = document.querySelector(sel); return el ? el.textContent : null; };
  if (document.body.dataset.state !== 'live') return false;
  for (const [k, v] of Object.entries(want)) {
    const got = k === 'connections' ? text('#connections') : text(`#topics tr[data-topic="${CSS.escape(k)}"] td.members`);
    if (got !== v) return false;
  }
  return true;
}

async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: STEP, polling: 50 });
  } catch (err) {
    const state = await page.evaluate(() => JSON.stringify({ state: document.body.dataset.state, last: window.wsactorStatus && window.wsactorStatus.last })).catch(() => '?');
    throw new Error(`${what}: ${err.message}\npage: ${state}`);
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: STEP,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    emit({ event: 'browser', version: browser.version() });
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.on('console', (m) => emit({ event: 'console', type: m.type(), text: m.text() }));
    page.on('pageerror', (e) => emit({ event: 'pageerror', error: String(e) }));

    const unauthorized = (await page.request.get(url, { timeout: STEP })).status();

    // Record every change of the page's state (body[data-state]).
    await page.addInitScript(() => {
      window.__states = [];
      new MutationObserver((records) => {
        for (const r of records) if (r.target === document.body) window.__states.push(document.body.dataset.state);
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
    });
    await page.goto(`${url}?token=${encodeURIComponent(token)}`, { timeout: STEP });
    await until(page, `the page showing ${first}`, shows, JSON.parse(first));
    emit({ event: 'shown' });
    await until(page, `the page showing ${then} live`, shows, JSON.parse(then));

    await page.evaluate(() => window.wsactorStatus.drop());
    await until(page, 'the page reconnecting', () => window.wsactorStatus.connects === 2 && window.wsactorStatus.state === 'live' && window.__states.length >= 3);
    await until(page, `the page showing ${then} after reconnecting`, shows, JSON.parse(then));
    await page.screenshot({ path: shot, fullPage: true });
    const result = await page.evaluate(() => ({
      connects: window.wsactorStatus.connects,
      snapshots: window.wsactorStatus.snapshots,
      states: window.__states,
      text: document.body.innerText,
    }));
    emit({ event: 'done', result: { unauthorized, ...result }, screenshots: [shot] });
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    emit({ event: 'error', error: String((err && err.stack) || err) });
    process.exit(1);
  },
);
