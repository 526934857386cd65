// Opens a `capstan demo --html` page in headless Chromium through Playwright, saves a full-page
// screenshot, and prints as JSON what the page did: every request other than the page itself
// (each one aborted), console errors, and what it shows: per chart its decision markers and node
// bars as drawn (with their size on screen), and the rows of the timeline table.
//
//   node demo_page.mjs PAGE.html SCREENSHOT.png
//
// CAPSTAN_TEST_CHROMIUM is the browser; CAPSTAN_TEST_PLAYWRIGHT the folder whose node_modules
// holds playwright-core.

import { openOffline, pageArgs } from './browser.mjs';

await openOffline(pageArgs(import.meta.filename), 'story', () => {
  // A marker is a vertical line: no width, only a height.
  const drawn = (element) => {
    const box = element.getBoundingClientRect();
    return (box.width > 0 || element.tagName === 'line') && box.height > 0;
  };
  // Per item of a figure's legend, the most points of a line drawn in its colour.
  const points = (line) => (line.getAttribute('points') || '').trim().split(/\s+/).filter(Boolean).length;
  const lines = (figure) => Object.fromEntries(
    [...figure.querySelectorAll('.legend [data-legend]')].map((item) => [
      item.dataset.legend,
      Math.max(0, ...[...figure.querySelectorAll('svg polyline')]
        .filter((l) => (l.getAttribute('stroke') || '').toUpperCase() === item.dataset.colour.toUpperCase())
        .map(points)),
    ]),
  );
  const charts = [...document.querySelectorAll('figure.chart')].map((figure) => ({
    chart: figure.dataset.chart,
    lines: lines(figure),
    markers: [...figure.querySelectorAll('line.marker')].map((m) => ({
      marker: m.dataset.marker,
      t: Number(m.dataset.t),
      drawn: drawn(m),
    })),
    bars: [...figure.querySelectorAll('g.bar')].map((bar) => ({
      instance: bar.dataset.instance,
      instanceType: bar.dataset.instanceType,
      capacityType: bar.dataset.capacityType,
      pricePerHour: Number(bar.dataset.pricePerHour),
      label: [...bar.querySelectorAll('text')].map((t) => t.textContent).join(' | '),
      phases: [...bar.querySelectorAll('rect.span')].filter(drawn).map((r) => r.dataset.phase),
    })),
  }));
  const rows = [...document.querySelectorAll('table.events tr[data-event]')].map((row) => ({
    event: row.dataset.event,
    t: Number(row.dataset.t),
  }));
  return { charts, rows };
});
