// Opens a `capstan simulate --format html` page in headless Chromium through Playwright, saves a
// full-page screenshot, and prints as JSON what the page did: every request other than the page
// itself (each one aborted), console errors, and per chart how many points each revision's line has.
//
//   node report.mjs PAGE.html SCREENSHOT.png
//
// CAPSTAN_TEST_CHROMIUM is the browser; CAPSTAN_TEST_PLAYWRIGHT the folder whose node_modules
// holds playwright-core.

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [page, screenshot] = process.argv.slice(2);
if (!page || !screenshot) {
  console.error('usage: node report.mjs PAGE.html SCREENSHOT.png');
  process.exit(2);
}
for (const name of ['CAPSTAN_TEST_CHROMIUM', 'CAPSTAN_TEST_PLAYWRIGHT']) {
  if (!process.env[name]) {
    console.error(`${name} is not set: run ./scripts/test.sh, which installs Chromium and Playwright`);
    process.exit(2);
  }
}
const require = createRequire(join(resolve(process.env.CAPSTAN_TEST_PLAYWRIGHT), 'package.json'));
const { chromium } = require('playwright-core');

const url = pathToFileURL(resolve(page)).href;
const profile = mkdtempSync(join(tmpdir(), 'capstan-chromium-'));
const seen = { requests: [], consoleErrors: [], charts: [] };
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CAPSTAN_TEST_CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  await context.route('**/*', (route) => {
    const asked = route.request().url();
    if (asked === url) return route.continue();
    seen.requests.push(asked);
    return route.abort();
  });
  context.on('request', (request) => {
    if (request.url() !== url && !seen.requests.includes(request.url())) seen.requests.push(request.url());
  });
  const tab = context.pages()[0] ?? (await context.newPage());
  tab.on('console', (message) => {
    if (message.type() === 'error') seen.consoleErrors.push(message.text());
  });
  tab.on('pageerror', (error) => seen.consoleErrors.push(String(error)));
  await tab.goto(url, { waitUntil: 'load' });
  seen.title = await tab.title();
  seen.charts = await tab.evaluate(() => {
    const strokes = {};
    for (const item of document.querySelectorAll('.legend [data-revision]')) {
      strokes[item.dataset.revision] = item.dataset.stroke.toUpperCase();
    }
    const points = (line) => (line.getAttribute('points') || '').trim().split(/\s+/).filter(Boolean).length;
    return [...document.querySelectorAll('figure.chart')].map((figure) => {
      const chart = { chart: figure.dataset.chart, cluster: figure.dataset.cluster, base: 0, head: 0 };
      for (const line of figure.querySelectorAll('svg polyline')) {
        const stroke = (line.getAttribute('stroke') || '').toUpperCase();
        for (const side of ['base', 'head']) {
          if (strokes[side] && stroke === strokes[side]) chart[side] = Math.max(chart[side], points(line));
        }
      }
      return chart;
    });
  });
  await tab.screenshot({ path: screenshot, fullPage: true });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(seen));
