// Opens the status page on a large board (a file written by `capstan bench board --out`) in
// headless Chromium: the page's own files come from the source tree and `/status/board` from the
// file, with a new entity tag on every poll so the page draws it again each second. Prints as
// JSON what it drew and how long each drawing took.
//
//   node status_page_large.mjs PAGE_DIR BOARD.json SCREENSHOT.png
//
// CAPSTAN_TEST_CHROMIUM is the browser; CAPSTAN_TEST_PLAYWRIGHT the folder whose node_modules
// holds playwright-core.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { launch } from './browser.mjs';

const [pageDir, boardFile, screenshot] = process.argv.slice(2);
if (!pageDir || !boardFile || !screenshot) {
  console.error('usage: node status_page_large.mjs PAGE_DIR BOARD.json SCREENSHOT.png');
  process.exit(2);
}

const origin = 'http://capstan.test';
const files = {
  '/': ['text/html', readFileSync(join(pageDir, 'index.html'))],
  '/assets/app.js': ['text/javascript', readFileSync(join(pageDir, 'app.js'))],
  '/assets/style.css': ['text/css', readFileSync(join(pageDir, 'style.css'))],
};
const board = readFileSync(boardFile);
const seen = { outside: [], consoleErrors: [], polls: 0 };
const { context, close } = await launch({ width: 1400, height: 900 });
let code = 0;
try {
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.origin !== origin) {
      seen.outside.push(url.href);
      return route.abort();
    }
    if (url.pathname === '/status/board') {
      seen.polls += 1;
      const headers = { 'content-type': 'application/json', etag: `"${seen.polls}"`, 'x-capstan-clock': '3600' };
      return route.fulfill({ status: 200, headers, body: board });
    }
    const file = files[url.pathname];
    if (!file) return route.fulfill({ status: 404, body: 'no such file' });
    return route.fulfill({ status: 200, headers: { 'content-type': file[0] }, body: file[1] });
  });
  const tab = context.pages()[0] ?? (await context.newPage());
  tab.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  tab.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  const started = Date.now();
  await tab.goto(origin + '/', { waitUntil: 'load' });
  await tab.waitForFunction(() => Number(document.body.dataset.renders) >= 1, null, { timeout: 60_000 });
  seen.firstDrawnAfterMs = Date.now() - started;
  const renders = [];
  for (let i = 0; i < 3; i++) {
    const before = Number(await tab.evaluate(() => document.body.dataset.renders));
    await tab.waitForFunction((n) => Number(document.body.dataset.renders) > n, before, { timeout: 60_000 });
    renders.push(Number(await tab.evaluate(() => document.body.dataset.renderMs)));
    // Between drawings the page answers at once: a round trip through its event loop.
    const asked = Date.now();
    await tab.evaluate(() => 1);
    renders.push(-(Date.now() - asked));
  }
  seen.renderMs = renders.filter((x) => x >= 0);
  seen.answerMs = renders.filter((x) => x < 0).map((x) => -x);
  Object.assign(
    seen,
    await tab.evaluate(() => ({
      tiles: document.querySelectorAll('.tile[data-node]').length,
      cards: document.querySelectorAll('.node[data-node]').length,
      groups: document.querySelectorAll('.group').length,
      nodeCount: document.getElementById('node-count').textContent,
      podCount: document.getElementById('pod-count').textContent,
      elements: document.getElementsByTagName('*').length,
    })),
  );
  await tab.screenshot({ path: screenshot });
} catch (e) {
  seen.error = String(e && e.stack ? e.stack : e);
  code = 1;
} finally {
  await close();
  console.log(JSON.stringify(seen));
  process.exit(code);
}
