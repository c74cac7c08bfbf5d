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
// "restart" once two tabs have chatted (the
// test then restarts the server on the same port), "done" with the
// screenshots once both tabs reconnected and chatted again, "console" and
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
    const context = await browser.newContext({ viewport: { width: 900, height: 500 } });
    // Two tabs of one browser profile.
    const alice = await open(context, 'alice');
    const bob = await open(context, 'bob');
    await alice.locator('#people li', { hasText: 'bob' }).waitFor({ timeout: STEP });
    await bob.locator('#people li', { hasText: 'alice' }).waitFor({ timeout: STEP });
    await say(alice, 'hello from alice', [alice, bob]);
    await alice.locator('#messages li.notice', { hasText: 'bob joined' }).waitFor({ timeout: STEP });
    const first = path.join(outDir, 'chat-bob.png');
    await bob.screenshot({ path: first });

    // The test restarts the server; each page reconnects and joins again.
    emit({ event: 'restart' });
    for (const page of [alice, bob]) {
      await page.waitForSelector('body[data-joins="2"][data-state="joined"]', { timeout: 2 * STEP });
      await page.locator('#messages li.notice', { hasText: 'reconnected to #e2e' }).waitFor({ timeout: STEP });
    }
    await alice.locator('#people li', { hasText: 'bob' }).waitFor({ timeout: STEP });
    await say(bob, 'hello again from bob', [alice, bob]);
    const second = path.join(outDir, 'chat-alice-after-restart.png');
    await alice.screenshot({ path: second });
    emit({ event: 'done', screenshots: [first, second] });
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
