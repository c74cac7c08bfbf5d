'use strict';
// Drives the browser client (channel/client/wsactor-channel.js) in headless
// Chromium for TestBrowserClient (browser_test.go). playwright-core comes
// from interop/node/node_modules through NODE_PATH; Playwright never
// downloads a browser of its own.
//
//   node browser.js OUT_DIR URL
//
// Environment: CHROMIUM, the browser binary (default /usr/bin/chromium).
//
// The test serves a page that joins room:e2e as ?user=NAME and keeps what it
// saw in window.app. Prints one JSON line per event: "restart" (result: the
// offsets of alice's and bob's messages) once both pages joined, saw each
// other and chatted (the test then restarts the server on the same
// address), "done" (result: each page's window.app; screenshots) once both
// pages rejoined and chatted again, "console" and "pageerror" from the
// pages, or "error" if a step failed.
const path = require('path');
const { chromium } = require('playwright-core');

const [outDir, url] = process.argv.slice(2);
const STEP = 20000; // bound on every wait

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function open(context, user, enc) {
  const page = await context.newPage();
  page.on('console', (m) => emit({ event: 'console', page: user, type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => emit({ event: 'pageerror', page: user, error: String(e) }));
  await page.goto(`${url}/?user=${user}&enc=${enc}`, { timeout: STEP });
  return page;
}

// until waits (at most STEP) for fn(arg) to be true in page, saying what
// it waited for if it times out.
async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: STEP, polling: 50 });
  } catch (err) {
    const app = await page.evaluate(() => JSON.stringify(window.app || null)).catch(() => '?');
    throw new Error(`${await page.evaluate(() => window.app && window.app.user).catch(() => '?')}: ${what}: ${err.message}\nwindow.app: ${app}`);
  }
}

// seesText waits until page has a message with text.
function seesText(page, text) {
  return until(page, `the message "${text}"`, (t) => window.app.messages.some((m) => m.text === t), text);
}

// seesBoth waits until page's presence lists alice and bob.
function seesBoth(page) {
  return until(page, 'alice and bob present', () => {
    const keys = window.app.presence.map((p) => p.key).sort().join(',');
    return keys === 'alice,bob';
  });
}

// say pushes text from page and returns the reply (the event's offset).
async function say(page, text, seeAt) {
  const reply = await page.evaluate((t) => window.app.send(t), text);
  for (const p of seeAt) await seesText(p, text);
  return reply;
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
    const context = await browser.newContext({ viewport: { width: 700, height: 600 } });
    const alice = await open(context, 'alice', 'json');
    const bob = await open(context, 'bob', 'binary'); // one topic, both encodings
    for (const page of [alice, bob]) await until(page, 'joined', () => window.app.joins.length === 1 && document.body.dataset.state === 'joined');
    await seesBoth(alice);
    await seesBoth(bob);
    const a = await say(alice, 'hello from alice', [alice, bob]);
    const b = await say(bob, 'hello from bob', [alice, bob]);
    const shots = [path.join(outDir, 'channel-alice.png'), path.join(outDir, 'channel-bob.png')];
    await alice.screenshot({ path: shots[0] });
    await bob.screenshot({ path: shots[1] });

    // The test restarts the server; each page reconnects and rejoins.
    emit({ event: 'restart', result: { alice: a.offset, bob: b.offset } });
    for (const page of [alice, bob]) {
      await until(page, 'rejoined', () => window.app.joins.length === 2 && document.body.dataset.state === 'joined');
      await seesText(page, 'missed 3');
      await seesBoth(page);
    }
    await say(bob, 'back again', [alice, bob]);
    // Time for a duplicate to show up, if the client let one through.
    await new Promise((r) => setTimeout(r, 300));
    shots.push(path.join(outDir, 'channel-alice-after-restart.png'), path.join(outDir, 'channel-bob-after-restart.png'));
    await alice.screenshot({ path: shots[2] });
    await bob.screenshot({ path: shots[3] });
    const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify({ ...window.app, send: undefined })));
    emit({ event: 'done', result: { alice: await state(alice), bob: await state(bob) }, screenshots: shots });
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
