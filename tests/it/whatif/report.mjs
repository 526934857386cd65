// Opens a `capstan simulate --format html` page in headless Chromium through Playwright, saves a
// full-page screenshot, and prints as JSON what the page did: every request other than the page
// itself (each one aborted), console errors, and per chart how many points each revision's line has.
//
//   node report.mjs PAGE.html SCREENSHOT.png
//
// CAPSTAN_TEST_CHROMIUM is the browser; CAPSTAN_TEST_PLAYWRIGHT the folder whose node_modules
// holds playwright-core.

import { openOffline, pageArgs } from '../browser.mjs';

await openOffline(pageArgs(import.meta.filename), 'charts', () => {
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
