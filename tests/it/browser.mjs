// Headless Chromium through Playwright for the tests' pages: `launch` starts it in a fresh
// profile; `openOffline` opens a page written by capstan with every request other than the page
// itself aborted and listed, saves a full-page screenshot and prints as JSON what the page did
// (requests, console errors, title) with what `look` read from it.
//
// CAPSTAN_TEST_CHROMIUM is the browser; CAPSTAN_TEST_PLAYWRIGHT the folder whose node_modules
// holds playwright-core.

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// `node SCRIPT PAGE.html SCREENSHOT.png`: the page, the screenshot, or the usage and exit 2.
export function pageArgs(script) {
  const [page, screenshot] = process.argv.slice(2);
  if (!page || !screenshot) {
    console.error(`usage: node ${basename(script)} PAGE.html SCREENSHOT.png`);
    process.exit(2);
  }
  for (const name of ['CAPSTAN_TEST_CHROMIUM', 'CAPSTAN_TEST_PLAYWRIGHT']) {
    if (!process.env[name]) {
      console.error(`${name} is not set: run ./scripts/test.sh, which installs Chromium and Playwright`);
      process.exit(2);
    }
  }
  return { page, screenshot };
}

// Chromium in a new profile: its browser context, and `close`, which removes the profile too.
export async function launch(viewport = { width: 1280, height: 900 }) {
  const require = createRequire(join(resolve(process.env.CAPSTAN_TEST_PLAYWRIGHT), 'package.json'));
  const { chromium } = require('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'capstan-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CAPSTAN_TEST_CHROMIUM,
    headless: true,
    viewport,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

// Opens `page`, runs `look` (a function evaluated in the page) into `seen[key]`, saves the
// screenshot and prints `seen`.
export async function openOffline({ page, screenshot }, key, look) {
  const url = pathToFileURL(resolve(page)).href;
  const seen = { requests: [], consoleErrors: [], [key]: [] };
  const { context, close } = await launch();
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
    seen[key] = await tab.evaluate(look);
    await tab.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await close();
  }
  console.log(JSON.stringify(seen));
}
