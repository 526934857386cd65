// The status page: polls /status/board every second (a 304 when nothing changed) and draws it.
// Every text from the daemon goes into the page as a text node, never as markup.
'use strict';

const POLL_MS = 1000;
// Beyond this many nodes each node is a coloured tile (details on hover), not a card.
const CARDS_UP_TO = 200;
// Pod squares drawn per card; the rest are counted.
const DOTS_PER_NODE = 120;

let etag = null;
// The daemon's clock minus this browser's, in seconds: ages count on the daemon's clock.
let offset = 0;
let lastContact = 0;

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function now() {
  return Date.now() / 1000 + offset;
}

function age(since) {
  let s = Math.max(0, Math.floor(now() - since));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd' + Math.floor((s % 86400) / 3600) + 'h';
}

function ageEl(since) {
  const e = el('span', 'age', age(since));
  e.dataset.since = since;
  return e;
}

function money(x, digits) {
  return '$' + (x || 0).toFixed(digits === undefined ? 3 : digits);
}

function cores(milli) {
  const c = milli / 1000;
  return (Math.round(c * 100) / 100).toString();
}

function gib(bytes) {
  return (Math.round((bytes / 2 ** 30) * 10) / 10).toString() + 'Gi';
}

function pct(bar) {
  return bar.allocatable > 0 ? Math.round((100 * bar.requested) / bar.allocatable) : 0;
}

// `main@sha1:<40 hex>` reads as `main@<7 hex>`; the whole revision is in the tooltip.
function shortRev(rev) {
  if (!rev) return '—';
  const m = /^(.*)@sha1:([0-9a-f]{7})[0-9a-f]*$/.exec(rev);
  return m ? m[1] + '@' + m[2] : rev;
}

function setRev(id, rev) {
  const e = $(id);
  e.textContent = shortRev(rev);
  e.title = rev || '';
  e.dataset.revision = rev || '';
}

function bar(kind, b) {
  const wrap = el('div');
  const label = el('div', 'bar-label');
  label.append(el('span', null, kind), el('span', null, pct(b) + '%'));
  const track = el('div', kind === 'memory' ? 'bar mem' : 'bar');
  const fill = el('i');
  fill.style.width = Math.min(100, pct(b)) + '%';
  track.append(fill);
  wrap.append(label, track);
  return wrap;
}

function stateText(n) {
  const labels = { ready: 'Ready', 'not-ready': 'NotReady' };
  const s = labels[n.state] || n.state;
  return n.reason ? s + ' (' + n.reason + ')' : s;
}

function card(n) {
  const c = el('div', 'node');
  c.dataset.node = n.name;
  c.dataset.state = n.state;
  c.dataset.pods = n.pods;
  c.title = [n.name, n.instance, n.claim && 'NodeClaim ' + n.claim, n.revision && 'policy ' + n.revision]
    .filter(Boolean)
    .join('\n');
  c.append(el('div', 'node-name', n.name));
  const l1 = el('div', 'node-line');
  const type = el('span', null, n.instanceType || '—');
  const cap = el('span', n.capacityType === 'spot' ? 'badge spot' : 'badge', n.capacityType || '—');
  const price = el('span', null, n.pricePerHour != null ? money(n.pricePerHour, 4) + '/h' : '');
  l1.append(type, cap, price);
  const l2 = el('div', 'node-line');
  l2.append(el('span', 'state', stateText(n)), ageEl(n.since));
  l2.append(el('span', null, n.pods + (n.maxPods ? '/' + n.maxPods : '') + ' pods'));
  c.append(l1, l2, bar('cpu', n.cpu), bar('memory', n.memory));
  if (n.podList && n.podList.length) {
    const dots = el('div', 'dots');
    for (const p of n.podList.slice(0, DOTS_PER_NODE)) {
      const d = el('span', 'dot' + (p.daemon ? ' daemon' : p.running ? '' : ' pending'));
      d.dataset.pod = p.name;
      d.title = p.name + (p.running ? '' : ' (starting)');
      dots.append(d);
    }
    if (n.podList.length > DOTS_PER_NODE) dots.append(el('span', 'sub', '+' + (n.podList.length - DOTS_PER_NODE)));
    c.append(dots);
  } else if (n.owners && n.owners.length) {
    c.append(el('div', 'owners', n.owners.map((o) => o.owner + ' ×' + o.pods).join(', ')));
  }
  return c;
}

function tile(n) {
  const t = el('span', 'tile');
  const load = Math.max(pct(n.cpu), pct(n.memory));
  t.classList.add(load >= 70 ? 'busy' : load >= 30 ? 'half' : 'idle');
  t.dataset.node = n.name;
  t.dataset.state = n.state;
  t.dataset.pods = n.pods;
  t.title = [
    n.name,
    (n.instanceType || '') + ' ' + (n.capacityType || '') + ' ' + (n.pricePerHour != null ? money(n.pricePerHour, 4) + '/h' : ''),
    stateText(n) + ', ' + n.pods + ' pods, cpu ' + pct(n.cpu) + '%, memory ' + pct(n.memory) + '%',
  ].join('\n');
  return t;
}

function drawMap(board) {
  const groups = $('groups');
  clear(groups);
  const nodes = board.nodes;
  $('no-nodes').hidden = nodes.length > 0;
  const compact = nodes.length > CARDS_UP_TO;
  $('map-note').textContent = compact
    ? nodes.length + ' nodes as tiles (hover for details); colour is the state, shade the load'
    : board.podsListed
      ? ''
      : 'pods counted by owner';
  const byGroup = new Map();
  for (const n of nodes) {
    const key = (n.nodePool || 'not managed by capstan') + '\u0000' + (n.zone || 'no zone');
    if (!byGroup.has(key)) byGroup.set(key, []);
    byGroup.get(key).push(n);
  }
  const frag = document.createDocumentFragment();
  for (const [key, members] of byGroup) {
    const [pool, zone] = key.split('\u0000');
    const g = el('div', 'group');
    g.dataset.pool = pool;
    const cost = members.reduce((s, n) => s + (n.pricePerHour || 0), 0);
    const title = el('div', 'group-title', pool + ' · ' + zone);
    title.append(el('span', 'sub', members.length + ' node(s), ' + money(cost) + '/h'));
    g.append(title);
    const box = el('div', compact ? 'tiles' : 'nodes');
    for (const n of members) box.append(compact ? tile(n) : card(n));
    g.append(box);
    frag.append(g);
  }
  groups.append(frag);
}

function drawPending(p) {
  $('pending-total').textContent = p.total ? p.total + ' waiting' : '';
  $('no-pending').hidden = p.total > 0;
  const reasons = $('pending-reasons');
  clear(reasons);
  for (const r of p.byReason) {
    const li = el('li');
    li.append(el('b', null, r.pods), document.createTextNode(' ' + r.reason));
    reasons.append(li);
  }
  const pods = $('pending-pods');
  clear(pods);
  for (const pod of p.pods) {
    const li = el('li');
    li.dataset.pod = pod.name;
    li.append(el('span', 'name', pod.name), document.createTextNode(' '), ageEl(pod.since));
    li.append(el('span', 'why', pod.reason));
    pods.append(li);
  }
  if (p.total > p.pods.length) pods.append(el('li', 'sub', '… and ' + (p.total - p.pods.length) + ' more'));
}

function limit(used, max, fmt) {
  return max != null ? fmt(used) + ' / ' + fmt(max) : fmt(used);
}

function drawPools(pools) {
  const rows = $('pool-rows');
  clear(rows);
  for (const p of pools) {
    const tr = el('tr');
    tr.dataset.pool = p.name;
    tr.append(
      el('td', null, p.name),
      el('td', 'num', limit(p.nodes, p.limitNodes, String)),
      el('td', 'num', limit(p.cpu, p.limitCpu, cores)),
      el('td', 'num', limit(p.memory, p.limitMemory, gib)),
      el('td', 'num', money(p.cost.perHour, 2)),
    );
    rows.append(tr);
  }
}

function drawDecisions(list) {
  const rows = $('decisions');
  clear(rows);
  const newest = (list || []).slice().reverse();
  $('no-decisions').hidden = newest.length > 0;
  for (const d of newest) {
    const tr = el('tr');
    tr.dataset.action = d.action;
    const rev = el('td', 'rev', shortRev(d.revision));
    rev.title = d.revision || '';
    tr.append(el('td', null, (d.time || '').replace('T', ' ').replace(/\.\d+/, '')), el('td', null, d.action));
    tr.append(el('td', null, d.reason), el('td', null, d.object), rev);
    rows.append(tr);
  }
}

function drawPolicy(s) {
  setRev('revision', s.appliedRevision || s.acceptedRevision);
  setRev('last-known-good', s.lastKnownGood);
  setRev('last-revision', s.lastRevision);
  $('leader').textContent = s.leader ? 'this replica' : 'another replica';
  $('standby').hidden = s.leader !== false;
  $('fetch-error').hidden = !s.fetchError;
  $('fetch-error-text').textContent = s.fetchError || '';
  const rejected = !s.fetchError && Boolean(s.policyError) && s.lastRevision !== s.acceptedRevision;
  $('policy-error').hidden = !rejected;
  setRev('rejected-revision', rejected ? s.lastRevision : null);
  const errs = $('policy-errors');
  clear(errs);
  if (rejected) {
    const lines = s.policyErrors && s.policyErrors.length ? s.policyErrors : [s.policyError];
    for (const e of lines) errs.append(el('li', null, e));
  }
  const cap = $('capacity-error');
  cap.hidden = !s.capacityError;
  cap.textContent = s.capacityError ? 'Capacity loop: ' + s.capacityError : '';
  const r = s.rollout || {};
  $('wave').textContent = r.wave != null ? String(r.wave) : '—';
  $('rollout-state').textContent = r.state || '—';
  $('soak').textContent = r.soakSeconds ? r.soakSeconds + 's soak' : 'none';
  $('health').textContent = r.healthy ? 'healthy' : 'not healthy' + (r.healthReasons && r.healthReasons.length ? ': ' + r.healthReasons.join('; ') : '');
  $('rollout-reason').textContent = r.error ? r.reason + ' (' + r.error + ')' : r.reason || '';
  const steps = $('rollout-steps');
  clear(steps);
  for (const st of (r.recentSteps || []).slice(-5).reverse()) steps.append(el('li', null, st.message || st.kind));
  const peers = $('peers');
  clear(peers);
  const seen = Object.entries(r.peers || {});
  $('peers-box').hidden = seen.length === 0;
  for (const [cluster, p] of seen) {
    const li = el('li', null, cluster + ': ' + (p.latest ? 'in force ' + p.latest.slice(0, 7) : 'nothing seen in force'));
    if (p.since) li.append(document.createTextNode(', healthy since ' + p.since));
    li.dataset.peer = cluster;
    peers.append(li);
  }
}

function drawHeader(d) {
  const b = d.board;
  $('cluster').textContent = b.cluster;
  document.title = 'capstan · ' + b.cluster;
  $('cost-hour').textContent = money(b.cost.perHour) + '/h';
  $('cost-month').textContent = money(b.cost.perMonth, 0) + '/month';
  $('node-count').textContent = b.totals.nodes;
  $('pod-count').textContent = b.totals.pods;
  $('pending-count').textContent = b.totals.pending;
  $('cluster-cpu').textContent = cores(b.totals.cpu.requested) + ' / ' + cores(b.totals.cpu.allocatable);
  $('cluster-memory').textContent = gib(b.totals.memory.requested) + ' / ' + gib(b.totals.memory.allocatable);
}

function render(d) {
  const started = performance.now();
  drawHeader(d);
  drawPolicy(d.status);
  drawMap(d.board);
  drawPending(d.board.pending);
  drawPools(d.board.pools);
  drawDecisions(d.status.recentDecisions);
  document.body.dataset.builtAt = d.builtAt;
  document.body.dataset.renders = Number(document.body.dataset.renders || 0) + 1;
  document.body.dataset.renderMs = Math.round(performance.now() - started);
}

function tickAges() {
  for (const e of document.querySelectorAll('[data-since]')) e.textContent = age(Number(e.dataset.since));
}

function live(text, stale) {
  const e = $('live');
  e.textContent = text;
  e.classList.toggle('stale', Boolean(stale));
}

// A poll that gets no answer within this is given up (a connection that died silently).
const TIMEOUT_MS = 5000;

function stale(why) {
  const since = lastContact ? Math.round((Date.now() - lastContact) / 1000) + 's ago' : 'never';
  live(why + ' (last update ' + since + '); retrying', true);
}

async function poll() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const headers = etag ? { 'If-None-Match': etag } : {};
    const r = await fetch('/status/board', { headers, cache: 'no-store', signal: abort.signal });
    const clock = Number(r.headers.get('x-capstan-clock'));
    if (clock) offset = clock - Date.now() / 1000;
    if (r.status === 200) {
      const d = await r.json();
      try {
        render(d);
      } catch (e) {
        // Drawn in part: the next poll asks for the whole board again.
        etag = null;
        stale('this board could not be drawn: ' + e);
        return;
      }
      etag = r.headers.get('ETag');
    } else if (r.status !== 304) {
      stale('the daemon answered ' + r.status);
      return;
    }
    lastContact = Date.now();
    tickAges();
    live('live · ' + new Date(now() * 1000).toISOString().slice(11, 19) + ' UTC');
  } catch (e) {
    stale(abort.signal.aborted ? 'the daemon did not answer within 5 s' : 'cannot reach the daemon');
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_MS);
  }
}

document.addEventListener('DOMContentLoaded', poll);
