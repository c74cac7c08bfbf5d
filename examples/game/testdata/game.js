'use strict';
// Plays the game page in headless Chromium for TestGameBrowser
// (browser_test.go). playwright-core comes from interop/node/node_modules
// through NODE_PATH; Playwright never downloads a browser of its own.
//
//   node game.js OUT_DIR URL
//
// Environment: CHROMIUM, the browser binary (default /usr/bin/chromium).
//
// Prints "phone" with what a 390 px wide touch screen shows (the page's
// width, whether its icon loaded, and how far a finger held on the board
// moved our dot), "done" with the result and the screenshot, "console" and
// "pageerror" from the pages, or "error" if a step failed.
const path = require('path');
const { chromium } = require('playwright-core');

const [outDir, url] = process.argv.slice(2);
const STEP = 20000; // bound on every wait

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// myDot returns our player in the latest snapshot and the colour of the
// canvas pixel at its centre, as #rrggbb.
function myDot() {
  const g = window.game;
  const me = g.last && g.last.players.find((p) => p.id === g.me);
  if (!me) return null;
  const px = document.querySelector('#board').getContext('2d').getImageData(me.x, me.y, 1, 1).data;
  const hex = '#' + [px[0], px[1], px[2]].map((v) => v.toString(16).padStart(2, '0')).join('');
  return { id: me.id, x: me.x, y: me.y, color: me.color, pixel: hex };
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

// phone plays on a phone-sized touch screen: it holds a pointer on the board
// on the far side of our dot until the dot has moved toward it, and reports
// the page's width (which must not exceed the screen's), the icon check and
// how far the dot moved.
async function phone(browser) {
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    const page = await context.newPage();
    page.on('console', (m) => emit({ event: 'console', page: 'phone', type: m.type(), text: m.text() }));
    page.on('pageerror', (e) => emit({ event: 'pageerror', page: 'phone', error: String(e) }));
    await page.goto(url, { timeout: STEP });
    await page.waitForFunction(() => window.game.rendered > 0 && window.game.last.players.some((p) => p.id === window.game.me), null, { timeout: STEP });
    const before = await page.evaluate(myDot);
    const board = await page.locator('#board').boundingBox();
    const width = await page.evaluate(() => document.querySelector('#board').width);
    const toward = before.x < width / 2 ? 0.9 : 0.1;
    await page.mouse.move(board.x + board.width * toward, board.y + (board.height * before.y) / (await page.evaluate(() => document.querySelector('#board').height)));
    await page.mouse.down();
    await page.waitForFunction((x0) => {
      const g = window.game;
      const me = g.last.players.find((p) => p.id === g.me);
      return Math.abs(me.x - x0) >= 20;
    }, before.x, { timeout: STEP });
    await page.mouse.up();
    const after = await page.evaluate(myDot);
    const screenshot = path.join(outDir, 'game-phone.png');
    await page.screenshot({ path: screenshot });
    return {
      viewport: PHONE.width,
      widths: { playing: await page.evaluate(() => document.documentElement.scrollWidth) },
      icon: await iconCheck(page),
      moved: after.x - before.x,
      screenshots: [screenshot],
    };
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
    const page = await browser.newPage({ viewport: { width: 900, height: 620 } });
    page.on('console', (m) => emit({ event: 'console', type: m.type(), text: m.text() }));
    page.on('pageerror', (e) => emit({ event: 'pageerror', error: String(e) }));
    await page.goto(url, { timeout: STEP });

    // A snapshot with our dot, drawn.
    await page.waitForFunction(() => window.game.rendered > 0 && window.game.last.players.some((p) => p.id === window.game.me), null, { timeout: STEP });
    const before = await page.evaluate(myDot);

    // Hold the key that moves toward the middle until the dot has moved.
    const key = before.x < 400 ? 'ArrowRight' : 'ArrowLeft';
    await page.keyboard.down(key);
    await page.waitForFunction((x0) => {
      const g = window.game;
      const me = g.last.players.find((p) => p.id === g.me);
      return Math.abs(me.x - x0) >= 20;
    }, before.x, { timeout: STEP });
    await page.keyboard.up(key);
    const after = await page.evaluate(myDot);

    const screenshot = path.join(outDir, 'game.png');
    await page.screenshot({ path: screenshot });
    const rendered = await page.evaluate(() => window.game.rendered);
    emit({
      event: 'done',
      screenshots: [screenshot],
      result: { me: before.id, color: before.color, pixels: [before.pixel, after.pixel], moved: after.x - before.x, rendered },
    });
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
