'use strict';
// Plays the game page in headless Chromium for TestGameBrowser
// (browser_test.go). playwright-core comes from interop/node/node_modules
// through NODE_PATH; Playwright never downloads a browser of its own.
//
//   node game.js OUT_DIR URL
//
// Environment: CHROMIUM, the browser binary (default /usr/bin/chromium).
//
// Prints "done" with the result and the screenshot, "console" and
// "pageerror" from the page, or "error" if a step failed.
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

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: STEP,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    emit({ event: 'browser', version: browser.version() });
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
