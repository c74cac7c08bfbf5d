'use strict';
// Runs page.html (served by the Go test) in Debian's headless Chromium through
// Playwright, for wsactor's Go interop tests (interop/chromium_test.go).
//
//   node browser.js OUT_DIR NAME=URL [NAME=URL ...]
//
// Environment:
//   CHROMIUM   the browser binary (default /usr/bin/chromium); Playwright never
//              downloads a browser of its own here.
//
// For each NAME=URL it opens the URL in a new page, waits (bounded) for the
// page's window.__result, saves OUT_DIR/NAME.png and prints
// {"event":"result","name":NAME,"screenshot":PATH,"result":{...}}. Console
// messages and page errors are printed as events too. The profile lives in a
// fresh user-data-dir under OUT_DIR, removed at the end.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const [outDir, ...targets] = process.argv.slice(2);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsactor-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30000,
    viewport: { width: 900, height: 420 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    emit({ event: 'browser', version: context.browser() ? context.browser().version() : '' });
    for (const target of targets) {
      const eq = target.indexOf('=');
      const name = target.slice(0, eq);
      const url = target.slice(eq + 1);
      const page = await context.newPage();
      page.on('console', (m) => emit({ event: 'console', name, type: m.type(), text: m.text() }));
      page.on('pageerror', (e) => emit({ event: 'pageerror', name, error: String(e) }));
      await page.goto(url, { timeout: 15000 });
      await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 20000 });
      const result = await page.evaluate(() => window.__result);
      const screenshot = path.join(outDir, `${name}.png`);
      await page.screenshot({ path: screenshot, fullPage: true });
      emit({ event: 'result', name, screenshot, result });
      await page.close();
    }
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    emit({ event: 'error', error: String((err && err.stack) || err) });
    process.exit(1);
  },
);
