'use strict';
// Drives the chat page in headless Chromium for TestChatBrowser
// (browser_test.go). playwright-core comes from interop/node/node_modules
// through NODE_PATH; Playwright never downloads a browser of its own.
//
//   node chat.js OUT_DIR URL
//
// Environment: CHROMIUM, the browser binary (default /usr/bin/chromium).
//
// Prints one JSON line per event: "phone" with what a 390 px wide phone
// shows (the page's width at each step and whether its icon loaded),
// "restart" once two pages have chatted and bob's has gone offline (the
// test then restarts the server on the same port and -data directory),
// "done" with the screenshots and how often each page shows each message
// once both pages reconnected, recovered and chatted again (and how many
// messages carol, who came last, got as history), "console" and
// "pageerror" from the pages, or "error" if a step failed.
const path = require('path');
const { chromium } = require('playwright-core');

const [outDir, url] = process.argv.slice(2);
const STEP = 20000; // bound on every wait

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function open(context, name) {
  const page = await context.newPage();
  page.on('console', (m) => emit({ event: 'console', page: name, type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => emit({ event: 'pageerror', page: name, error: String(e) }));
  await page.goto(url, { timeout: STEP });
  await page.fill('#name', name);
  await page.fill('#room', 'e2e');
  await page.click('#join-button');
  await page.waitForSelector('body[data-state="joined"]', { timeout: STEP });
  return page;
}

// say types text into page and presses Enter; every page in seeAt must show it.
async function say(page, text, seeAt) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  for (const p of seeAt) {
    await p.locator('#messages li.message', { hasText: text }).waitFor({ timeout: STEP });
  }
}

// PHONE is the viewport of a common phone (CSS pixels).
const PHONE = { width: 390, height: 844 };

// iconCheck loads the page's declared icon (or /favicon.ico if it declares
// none) and reports its address, HTTP status and decoded width.
async function iconCheck(page) {
  return page.evaluate(async () => {
    const link = document.querySelector('link[rel~="icon"]');
    const href = link ? link.href : new URL('/favicon.ico', location.href).href;
    const res = await fetch(href);
    const img = new Image();
    img.src = href;
    await img.decode().catch(() => {});
    return { href, status: res.status, width: img.naturalWidth };
  });
}

// phone joins a room of its own on a phone-sized touch screen, says
// something long, and reports the page's width (which must not exceed the
// screen's) at the form and in the room, and the icon check.
async function phone(browser) {
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    const page = await context.newPage();
    page.on('console', (m) => emit({ event: 'console', page: 'phone', type: m.type(), text: m.text() }));
    page.on('pageerror', (e) => emit({ event: 'pageerror', page: 'phone', error: String(e) }));
    await page.goto(url, { timeout: STEP });
    const width = () => page.evaluate(() => document.documentElement.scrollWidth);
    const widths = { form: await width() };
    await page.fill('#name', 'someone-with-a-rather-long-nickname');
    await page.fill('#room', 'a-room-with-a-rather-long-name');
    await page.click('#join-button');
    await page.waitForSelector('body[data-state="joined"]', { timeout: STEP });
    await say(page, 'a message long enough to wrap on a phone, with an unbroken word: ' + 'x'.repeat(60), [page]);
    widths.joined = await width();
    const screenshot = path.join(outDir, 'chat-phone.png');
    await page.screenshot({ path: screenshot });
    return { viewport: PHONE.width, widths, icon: await iconCheck(page), screenshots: [screenshot] };
  } finally {
    await context.close();
  }
}

// count is how many messages of page hold text.
function count(page, text) {
  return page.locator('#messages li.message', { hasText: text }).count();
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
    const onPhone = await phone(browser);
    emit({ event: 'phone', result: onPhone, screenshots: onPhone.screenshots });
    // Two browsers, so that bob's can go offline on its own.
    const viewport = { viewport: { width: 900, height: 500 } };
    const aliceContext = await browser.newContext(viewport);
    const bobContext = await browser.newContext(viewport);
    const alice = await open(aliceContext, 'alice');
    const bob = await open(bobContext, 'bob');
    await alice.locator('#people li', { hasText: 'bob' }).waitFor({ timeout: STEP });
    await bob.locator('#people li', { hasText: 'alice' }).waitFor({ timeout: STEP });
    await say(alice, 'hello from alice', [alice, bob]);
    await alice.locator('#messages li.notice', { hasText: 'bob joined' }).waitFor({ timeout: STEP });
    const first = path.join(outDir, 'chat-bob.png');
    await bob.screenshot({ path: first });

    // bob's network goes away, and the test restarts the server on the
    // same port with the same -data directory. alice reconnects, rejoins
    // with her position and misses nothing; she says something bob is not
    // there to hear.
    await bobContext.setOffline(true);
    emit({ event: 'restart' });
    await alice.waitForSelector('body[data-joins="2"][data-state="joined"]', { timeout: 2 * STEP });
    await alice.locator('#messages li.notice', { hasText: 'reconnected to #e2e, recovered 0 missed messages' }).waitFor({ timeout: STEP });
    await say(alice, 'said while bob was away', [alice]);

    // bob is back: his page rejoins and recovers what he missed, once.
    await bobContext.setOffline(false);
    await bob.waitForSelector('body[data-joins="2"][data-state="joined"]', { timeout: 2 * STEP });
    await bob.locator('#messages li.notice', { hasText: 'reconnected to #e2e, recovered 1 missed message' }).waitFor({ timeout: STEP });
    await bob.locator('#messages li.message', { hasText: 'said while bob was away' }).waitFor({ timeout: STEP });
    await alice.locator('#people li', { hasText: 'bob' }).waitFor({ timeout: STEP });
    await say(bob, 'hello again from bob', [alice, bob]);
    const counts = {};
    for (const [name, page] of [['alice', alice], ['bob', bob]]) {
      counts[name] = {};
      for (const text of ['hello from alice', 'said while bob was away', 'hello again from bob']) {
        counts[name][text] = await count(page, text);
      }
    }
    const second = path.join(outDir, 'chat-bob-after-restart.png');
    await bob.screenshot({ path: second });

    // carol arrives last: her page shows the room's history on joining.
    const carol = await open(aliceContext, 'carol');
    await carol.locator('#messages li.notice', { hasText: 'the last 3 messages in #e2e' }).waitFor({ timeout: STEP });
    await carol.locator('#messages li.notice', { hasText: 'you joined #e2e' }).waitFor({ timeout: STEP });
    counts.carol = { history: await carol.locator('#messages li.message.history').count() };
    const third = path.join(outDir, 'chat-carol-history.png');
    await carol.screenshot({ path: third });
    emit({ event: 'done', result: { counts }, screenshots: [first, second, third] });
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
