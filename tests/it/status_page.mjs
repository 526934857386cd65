// Drives the daemon's status page in headless Chromium through Playwright while the test scales
// `inflate` and commits policy: prints one JSON line per step and, where the test has to act
// (a commit), waits for a line on stdin naming the new commit.
//
//   node status_page.mjs BASE_URL SCREENSHOT_DIR
//
// CAPSTAN_TEST_CHROMIUM is the browser; CAPSTAN_TEST_PLAYWRIGHT the folder whose node_modules
// holds playwright-core.

import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { launch } from './browser.mjs';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node status_page.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}

const origin = new URL(base).origin;
const say = (step, detail) => console.log(JSON.stringify({ step, ...detail }));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const answer = async () => (await lines.next()).value;
const scale = async (replicas) => {
  const r = await fetch(`${origin}/sim/scale?deployment=inflate&replicas=${replicas}`, { method: 'POST' });
  if (r.status !== 200) throw new Error(`scale to ${replicas}: ${r.status} ${await r.text()}`);
  return Date.now();
};

const seen = { outside: [], consoleErrors: [] };
const { context, close } = await launch({ width: 1400, height: 900 });
try {
  // Anything but the daemon is refused and counted.
  await context.route('**/*', (route) => {
    const asked = route.request().url();
    if (new URL(asked).origin === origin) return route.continue();
    seen.outside.push(asked);
    return route.abort();
  });
  const tab = context.pages()[0] ?? (await context.newPage());
  tab.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  tab.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  await tab.goto(base, { waitUntil: 'load' });
  await tab.waitForFunction(() => document.body.dataset.builtAt, null, { timeout: 10_000 });
  const revision = await tab.getAttribute('#revision', 'data-revision');
  say('loaded', { revision, cluster: await tab.textContent('#cluster'), nodes: await tab.locator('[data-node]').count() });
  await tab.screenshot({ path: join(shots, 'status-empty.png'), fullPage: true });

  // 0 → 16: the nodes, then their pods, show up without a reload.
  let t0 = await scale(16);
  await tab.waitForSelector('[data-node]', { timeout: 30_000 });
  const nodesAfter = (Date.now() - t0) / 1000;
  await tab.waitForFunction(() => document.querySelectorAll('.dot[data-pod^="default/inflate-"]').length === 16, null, {
    timeout: 30_000,
  });
  const podsAfter = (Date.now() - t0) / 1000;
  // Pods may be bound a moment before capstan has seen the node initialized.
  await tab.waitForFunction(() => [...document.querySelectorAll('[data-node]')].every((n) => n.dataset.state === 'ready'), null, {
    timeout: 30_000,
  });
  const up = await tab.evaluate(() => ({
    nodes: [...document.querySelectorAll('[data-node]')].map((n) => ({
      name: n.dataset.node,
      state: n.dataset.state,
      pods: Number(n.dataset.pods),
      text: n.textContent,
    })),
    cost: document.getElementById('cost-hour').textContent,
    decisions: [...document.querySelectorAll('#decisions tr')].map((r) => r.dataset.action),
    pending: document.getElementById('pending-count').textContent,
  }));
  await tab.screenshot({ path: join(shots, 'status-scaled-up.png'), fullPage: true });
  say('scaled-up', { nodesAfter, podsAfter, ...up });

  // 16 → 0: the nodes go; every state they pass through is noted.
  const states = new Set();
  t0 = await scale(0);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const shown = await tab.evaluate(() => [...document.querySelectorAll('[data-node]')].map((n) => n.dataset.state));
    if (shown.length === 0) break;
    for (const s of shown) states.add(s);
    if (Date.now() > deadline) throw new Error('nodes still shown a minute after scaling to 0');
    await tab.waitForTimeout(100);
  }
  const decisions = await tab.evaluate(() => [...document.querySelectorAll('#decisions tr')].map((r) => r.dataset.action));
  await tab.screenshot({ path: join(shots, 'status-scaled-down.png'), fullPage: true });
  say('scaled-down', { goneAfter: (Date.now() - t0) / 1000, states: [...states], decisions });

  // A good commit changes the revision in force.
  say('commit', {});
  const good = (await answer()).trim();
  await tab.waitForFunction((sha) => document.getElementById('revision').dataset.revision.endsWith(sha), good, {
    timeout: 20_000,
  });
  say('committed', { revision: await tab.getAttribute('#revision', 'data-revision') });

  // A bad one is shown rejected, with its errors, and the good one stays in force.
  say('bad-commit', {});
  const bad = (await answer()).trim();
  await tab.waitForSelector('#policy-error:not([hidden])', { timeout: 20_000 });
  await tab.waitForFunction((sha) => document.getElementById('rejected-revision').dataset.revision.endsWith(sha), bad, {
    timeout: 20_000,
  });
  const rejected = await tab.evaluate(() => ({
    inForce: document.getElementById('revision').dataset.revision,
    errors: [...document.querySelectorAll('#policy-errors li')].map((li) => li.textContent),
  }));
  await tab.screenshot({ path: join(shots, 'status-rejected.png'), fullPage: true });
  say('rejected', rejected);
} catch (e) {
  say('failed', { error: String(e && e.stack ? e.stack : e), ...seen });
  process.exitCode = 1;
} finally {
  await close();
  say('done', seen);
  process.exit();
}
