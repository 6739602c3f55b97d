// The operator dashboard (`/`): live leaderboards, traffic charts derived from /metrics,
// service health and pipeline lag, player lookup, and with the admin token the quarantine
// queue, blocks, refused events and the audit log. Every call's failure is shown in words next
// to what it was for; nothing is swallowed.

import { api, ApiFailure, failureOf, fill, fmt, h, levelBar, say } from './api.js';
import { mountBoard } from './board.js';

const $ = (id) => document.getElementById(id);

const METRICS_EVERY_MS = 2000;
const CHART_SPAN_S = 600;
const HEALTH_EVERY_MS = 5000;
const ADMIN_EVERY_MS = 5000;
const LOOKUP_EVERY_MS = 5000;
const TOKEN_KEY = 'liveops.adminToken';
const NAME_KEY = 'liveops.operator';

// ---------------------------------------------------------------- leaderboard

mountBoard($('board'), { limit: 15, onPlayer: (id) => lookup(id) });

// ---------------------------------------------------------------- metrics and charts

/** Prometheus text -> Map(name -> [{labels, value}]). Only what the charts need: no histograms' le. */
export function parsePrometheus(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value });
  }
  return out;
}

const series = (m, name) => m.get(name) || [];
const sum = (m, name) => series(m, name).reduce((a, s) => a + s.value, 0);
// Every event passes every consumer; the furthest one counts the events the pipeline processed.
const processed = (m) => Math.max(0, ...series(m, 'events_processed_total').map((s) => s.value));

const samples = []; // {t (s), processed, dropped}
const charts = {};

function makeChart(el, label, color) {
  if (typeof uPlot === 'undefined') return null;
  const chart = new uPlot(
    {
      width: Math.max(200, el.clientWidth),
      height: 160,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      // Always the last 10 minutes up to now, also before there are two samples to draw.
      scales: { x: { time: true, range: () => [Date.now() / 1000 - CHART_SPAN_S, Date.now() / 1000] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
      axes: [{ stroke: '#667085', grid: { stroke: '#eef0f3' } }, { stroke: '#667085', size: 46, grid: { stroke: '#eef0f3' } }],
      // Points only while there are too few samples for a visible line.
      series: [{}, { label, stroke: color, width: 2, fill: `${color}22`, points: { show: (u, si, i0, i1) => i1 - i0 < 3 } }],
    },
    [[], []],
    el,
  );
  new ResizeObserver(() => chart.setSize({ width: Math.max(200, el.clientWidth), height: 160 })).observe(el);
  return chart;
}

function rates() {
  const xs = [];
  const ev = [];
  const rf = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = b.t - a.t;
    if (dt <= 0) continue;
    xs.push(b.t);
    // A restarted server starts its counters at zero again: no negative rates.
    ev.push(Math.max(0, b.processed - a.processed) / dt);
    rf.push(Math.max(0, b.dropped - a.dropped) / dt);
  }
  return { xs, ev, rf };
}

async function pollMetrics() {
  const status = $('traffic-status');
  try {
    const text = await api('/metrics', { text: true, what: 'Reading /metrics' });
    const m = parsePrometheus(text);
    const t = Date.now() / 1000;
    samples.push({ t, processed: processed(m), dropped: sum(m, 'dropped_events_total') });
    while (samples.length && samples[0].t < t - CHART_SPAN_S - 5) samples.shift();
    const { xs, ev, rf } = rates();
    charts.events ??= makeChart($('chart-events'), 'events/s', '#3b5bdb');
    charts.refusals ??= makeChart($('chart-refusals'), 'refused/s', '#c92a2a');
    charts.events?.setData([xs, ev]);
    charts.refusals?.setData([xs, rf]);
    $('event-rate').textContent = ev.length ? fmt.rate(ev[ev.length - 1]) : 'measuring';
    $('refusal-rate').textContent = rf.length ? fmt.rate(rf[rf.length - 1]) : 'measuring';
    if (typeof uPlot === 'undefined') say(status, 'The chart library did not load; showing the current rates only.', 'warn');
    else say(status, '');
    const lag = series(m, 'pipeline_lag_events');
    fill(
      $('lag'),
      lag.length
        ? lag.flatMap((s) => [h('dt', { text: s.labels.consumer || 'pipeline' }), h('dd', { text: `${fmt.int(s.value)} events` })])
        : [h('dt', { text: 'pipeline' }), h('dd', { class: 'muted', text: 'no lag reported yet (no events since start)' })],
    );
    const reasons = series(m, 'dropped_events_total').filter((s) => s.value > 0);
    fill(
      $('refusal-reasons'),
      reasons.length
        ? reasons.flatMap((s) => [h('dt', { text: s.labels.reason || 'unknown' }), h('dd', { text: fmt.int(s.value) })])
        : [h('dt', { text: 'none' }), h('dd', { class: 'muted', text: 'nothing refused' })],
    );
  } catch (e) {
    say(status, e.status === 404 ? `${e.message}. Metrics may be disabled (METRICS_ENABLED=false).` : e.message, 'error');
  }
}

// ---------------------------------------------------------------- health

async function pollHealth() {
  const pill = $('health');
  let body = null;
  let problem = null;
  try {
    const resp = await fetch('/readyz', { cache: 'no-store' });
    body = await resp.json().catch(() => null);
    if (!resp.ok && !body) problem = (await failureOf(resp, 'Readiness')).message;
  } catch (e) {
    problem = `The server did not answer (${e.message || e})`;
  }
  if (problem) {
    pill.textContent = 'unreachable';
    pill.dataset.state = 'bad';
    fill($('health-checks'), h('dt', { text: 'server' }), h('dd', { class: 'status', dataset: { kind: 'error' }, text: problem }));
    return;
  }
  const ready = body.status === 'ready';
  pill.textContent = ready ? 'ready' : body.status || 'not ready';
  pill.dataset.state = ready ? 'ok' : 'bad';
  fill(
    $('health-checks'),
    h('dt', { text: 'overall' }),
    h('dd', {}, h('span', { class: 'pill', dataset: { state: ready ? 'ok' : 'bad' }, text: body.status })),
    Object.entries(body.checks || {}).flatMap(([k, v]) => [
      h('dt', { text: k }),
      h('dd', {}, h('span', { class: 'pill', dataset: { state: v === 'ok' ? 'ok' : 'bad' }, text: String(v) })),
    ]),
  );
}

// ---------------------------------------------------------------- admin

const admin = {
  token: sessionStorage.getItem(TOKEN_KEY),
  name: sessionStorage.getItem(NAME_KEY) || '',
  timer: null,
};

function adminApi(path, opts = {}) {
  const headers = { Authorization: `Bearer ${admin.token}`, ...(opts.headers || {}) };
  if (admin.name) headers['X-Operator'] = admin.name;
  return api(path, { ...opts, headers }).catch((e) => {
    if (e instanceof ApiFailure && e.status === 401) {
      signOut(`${e.message}. Sign in again with the right token.`);
    }
    throw e;
  });
}

function signOut(message = '') {
  admin.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(admin.timer);
  $('admin-login').hidden = false;
  $('admin-signed-in').hidden = true;
  $('admin-panels').hidden = true;
  $('admin-state').textContent = 'signed out';
  $('admin-state').dataset.state = '';
  say($('admin-status'), message, message ? 'error' : '');
  rerenderLookup();
}

async function signIn(token, name) {
  admin.token = token;
  admin.name = name;
  try {
    // Any admin read proves the token; the audit log is the cheapest.
    await api('/admin/audit?limit=1', { headers: { Authorization: `Bearer ${token}` }, what: 'Signing in' });
  } catch (e) {
    admin.token = null;
    say($('admin-status'), e.status === 401 ? `The token was refused: ${e.message}` : e.message, 'error');
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(NAME_KEY, name);
  $('admin-login').hidden = true;
  $('admin-signed-in').hidden = false;
  $('admin-panels').hidden = false;
  $('admin-who').textContent = `Signed in as ${name || 'admin'}`;
  $('admin-state').textContent = 'operator';
  $('admin-state').dataset.state = 'ok';
  say($('admin-status'), '');
  clearInterval(admin.timer);
  admin.timer = setInterval(refreshAdmin, ADMIN_EVERY_MS);
  await refreshAdmin();
  rerenderLookup();
}

function actionButton(label, cls, fn) {
  const b = h('button', { type: 'button', class: cls, text: label });
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await fn();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

async function resolveFlag(flag, how) {
  try {
    const r = await adminApi(`/admin/flags/${encodeURIComponent(flag.eventId)}/${how}`, { method: 'POST', what: `${how === 'release' ? 'Releasing' : 'Rejecting'} event ${flag.eventId}` });
    const f = r.flag || r;
    say($('admin-status'), `Event ${flag.eventId} of ${flag.playerId} is now ${f.status || `${how}d`}.`, 'ok');
  } catch (e) {
    say($('admin-status'), e.message, 'error');
  }
  await refreshAdmin();
  if (shown === flag.playerId) await lookup(flag.playerId, { quiet: true });
}

async function setBlock(player, block, durationSec, reason) {
  try {
    if (block) {
      const body = {};
      if (durationSec) body.durationSec = durationSec;
      if (reason) body.reason = reason;
      await adminApi(`/admin/players/${encodeURIComponent(player)}/block`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), what: `Blocking ${player}` });
      say($('admin-status'), `${player} is blocked${durationSec ? ` for ${durationSec} s` : ' until unblocked'}.`, 'ok');
    } else {
      await adminApi(`/admin/players/${encodeURIComponent(player)}/block`, { method: 'DELETE', what: `Unblocking ${player}` });
      say($('admin-status'), `${player} is unblocked.`, 'ok');
    }
  } catch (e) {
    say($('admin-status'), e.message, 'error');
  }
  await refreshAdmin();
  if (shown === player) await lookup(player, { quiet: true });
}

async function refreshAdmin() {
  if (!admin.token) return;
  const results = await Promise.allSettled([
    api('/fairness/flags?status=quarantined&limit=100', { what: 'Loading the quarantine queue' }),
    adminApi('/admin/blocks', { what: 'Loading the blocks' }),
    adminApi('/admin/failed-events?limit=25', { what: 'Loading the refused events' }),
    adminApi('/admin/audit?limit=25', { what: 'Loading the audit log' }),
  ]);
  if (!admin.token) return; // signed out by a 401 meanwhile
  const [flags, blocks, failed, audit] = results;
  const errors = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  if (errors.length) say($('admin-status'), errors.join(' · '), 'error');

  if (flags.status === 'fulfilled') {
    const list = flags.value.flags;
    $('quarantine-count').textContent = `(${flags.value.total})`;
    fill(
      $('quarantine-rows'),
      list.length
        ? list.map((f) =>
            h(
              'tr',
              { dataset: { event: f.eventId, player: f.playerId } },
              h('td', { text: fmt.time(f.flaggedAt) }),
              h('td', {}, h('button', { type: 'button', class: 'link', text: f.playerId, onclick: () => lookup(f.playerId) })),
              h('td', { class: 'mono', text: f.metric }),
              h('td', { class: 'num', text: fmt.int(f.value) }),
              h('td', { text: f.reason }),
              h('td', { class: 'actions' }, actionButton('Release', '', () => resolveFlag(f, 'release')), ' ', actionButton('Reject', 'danger', () => resolveFlag(f, 'reject'))),
            ),
          )
        : h('tr', {}, h('td', { colspan: '6', class: 'muted', text: 'Nothing is waiting for review.' })),
    );
  }
  if (blocks.status === 'fulfilled') {
    const list = blocks.value.blocks;
    fill(
      $('block-rows'),
      list.length
        ? list.map((b) =>
            h(
              'tr',
              {},
              h('td', {}, h('button', { type: 'button', class: 'link', text: b.playerId, onclick: () => lookup(b.playerId) })),
              h('td', { text: b.until ? fmt.time(b.until) : 'until unblocked' }),
              h('td', { text: b.reason || '' }),
              h('td', { class: 'actions' }, actionButton('Unblock', 'secondary', () => setBlock(b.playerId, false))),
            ),
          )
        : h('tr', {}, h('td', { colspan: '4', class: 'muted', text: 'No one is blocked.' })),
    );
  }
  if (failed.status === 'fulfilled') {
    const list = failed.value.failed;
    fill(
      $('failed-rows'),
      list.length
        ? list.map((f) =>
            h(
              'tr',
              {},
              h('td', { text: fmt.time(f.at) }),
              h('td', {}, h('span', { class: 'pill', dataset: { state: f.status >= 500 ? 'bad' : 'warn' }, text: `${f.status} ${f.code}` })),
              h(
                'td',
                {},
                f.message,
                f.field ? h('span', { class: 'muted', text: ` (field ${f.field})` }) : null,
                f.body ? h('details', {}, h('summary', { class: 'muted', text: `body${f.truncated ? ' (truncated)' : ''}` }), h('pre', { class: 'body', text: f.body })) : null,
              ),
              h('td', { class: 'mono', text: f.clientIp }),
            ),
          )
        : h('tr', {}, h('td', { colspan: '4', class: 'muted', text: 'Nothing refused since the server started.' })),
    );
  }
  if (audit.status === 'fulfilled') {
    const list = audit.value.entries;
    fill(
      $('audit-rows'),
      list.length
        ? list.map((a) =>
            h(
              'tr',
              {},
              h('td', { text: fmt.time(a.at) }),
              h('td', { text: a.actor }),
              h('td', { text: a.action }),
              h('td', { class: 'mono', text: a.target }),
              h('td', { class: 'mono', text: a.detail == null ? '' : JSON.stringify(a.detail) }),
            ),
          )
        : h('tr', {}, h('td', { colspan: '5', class: 'muted', text: 'No admin actions yet.' })),
    );
  }
}

$('admin-login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  signIn($('admin-token').value.trim(), $('admin-name').value.trim());
  $('admin-token').value = '';
});
$('admin-logout').addEventListener('click', () => signOut());
$('admin-refresh').addEventListener('click', () => refreshAdmin());
$('block-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const d = Number($('block-duration').value);
  setBlock($('block-player').value.trim(), true, d > 0 ? Math.floor(d) : null, $('block-reason').value.trim());
});

// ---------------------------------------------------------------- player lookup

let shown = null;
let shownData = null;

async function getOrNull(path, what) {
  try {
    return await api(path, { what });
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

async function lookup(player, { quiet = false } = {}) {
  const status = $('lookup-status');
  $('lookup-id').value = player;
  if (!quiet) say(status, `Looking up ${player}...`);
  const p = encodeURIComponent(player);
  try {
    const [progress, rewards, fairness, ...ranks] = await Promise.all([
      getOrNull(`/players/${p}/progress`, 'Loading progress'),
      getOrNull(`/players/${p}/rewards`, 'Loading rewards'),
      api(`/fairness/players/${p}`, { what: 'Loading fairness status' }),
      ...['daily', 'weekly', 'seasonal'].map((w) => api(`/leaderboard?window=${w}&players=${p}`, { what: `Loading the ${w} rank` }).then((b) => b.entries[0] ?? null)),
    ]);
    shown = player;
    shownData = { player, progress, rewards, fairness, ranks };
    renderLookup();
    if (!progress && !fairness.flagCount) say(status, `No progress recorded for ${player} (yet).`, 'warn');
    else say(status, '');
  } catch (e) {
    say(status, e.message, 'error');
  }
}

function rerenderLookup() {
  if (shownData) renderLookup();
}

const REWARDS_SHOWN = 5;

function renderLookup() {
  const { player, progress, rewards, fairness, ranks } = shownData;
  const out = [];
  const side = [];
  out.push(h('h3', { text: player }));
  if (progress) {
    out.push(levelBar(progress.level, progress.xpIntoLevel, progress.xpForNextLevel));
    out.push(
      h(
        'div',
        { class: 'stats' },
        h('div', { class: 'stat' }, h('b', { 'data-testid': 'lookup-xp', text: fmt.int(progress.xp) }), h('span', { text: `XP in ${progress.season}` })),
        ...['daily', 'weekly', 'seasonal'].map((w, i) =>
          h('div', { class: 'stat' }, h('b', { text: ranks[i] ? `#${ranks[i].rank}` : '-' }), h('span', { text: `${w} rank` })),
        ),
      ),
    );
    const kills = Object.entries(progress.bossKills || {});
    out.push(
      h(
        'dl',
        { class: 'kv' },
        h('dt', { text: 'Boss kills' }),
        h('dd', { text: kills.length ? kills.map(([b, n]) => `${b} x${n}`).join(', ') : 'none' }),
        h('dt', { text: 'Drops' }),
        h('dd', { text: progress.drops?.length ? `${progress.drops.length}` : 'none' }),
        h('dt', { text: 'Updated' }),
        h('dd', { text: fmt.time(progress.updatedAt) }),
      ),
    );
  }
  // Fairness and rewards go in the second column on wide screens.
  const blocked = fairness.status === 'blocked';
  side.push(
    h(
      'div',
      { class: 'row' },
      h('strong', { text: 'Fairness' }),
      h('span', { class: 'pill', 'data-testid': 'lookup-fairness', dataset: { state: blocked ? 'bad' : 'ok' }, text: blocked ? `blocked${fairness.blockedUntil ? ` until ${fmt.time(fairness.blockedUntil)}` : ''}` : 'ok' }),
      h('span', { class: 'muted', text: `${fairness.flagCount} flag${fairness.flagCount === 1 ? '' : 's'}` }),
      admin.token ? actionButton(blocked ? 'Unblock' : 'Block', blocked ? 'secondary' : 'danger', () => setBlock(player, !blocked)) : null,
    ),
  );
  if (fairness.recentFlags?.length) {
    side.push(
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', { text: 'Flagged' }), h('th', { text: 'Status' }), h('th', { text: 'Metric' }), h('th', { class: 'num', text: 'Value' }), h('th', { text: 'Reason' }))),
          h(
            'tbody',
            {},
            fairness.recentFlags.map((f) =>
              h('tr', {}, h('td', { text: fmt.time(f.flaggedAt) }), h('td', { text: f.status }), h('td', { class: 'mono', text: f.metric }), h('td', { class: 'num', text: fmt.int(f.value) }), h('td', { text: f.reason })),
            ),
          ),
        ),
      ),
    );
  }
  // Rewards: claimed ones with their receipt ids first, then pending; long lists fold.
  if (rewards) {
    side.push(h('h3', { text: `Rewards: ${rewards.pending.length} pending, ${rewards.claimed.length} claimed` }));
    const row = (r, claimed) =>
      h(
        'tr',
        {},
        h('td', { text: r.item }),
        h('td', { class: 'num', text: String(r.level) }),
        h('td', {}, claimed ? h('span', { class: 'mono', text: r.receiptId }) : h('span', { class: 'pill', dataset: { state: 'warn' }, text: 'pending' })),
      );
    const rows = [...rewards.claimed.map((r) => row(r, true)), ...rewards.pending.map((r) => row(r, false))];
    const table = (list) =>
      h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Item' }), h('th', { class: 'num', text: 'Level' }), h('th', { text: 'Receipt' }))), h('tbody', {}, list)));
    if (rows.length) side.push(table(rows.slice(0, REWARDS_SHOWN)));
    if (rows.length > REWARDS_SHOWN) side.push(h('details', {}, h('summary', { class: 'muted', text: `${rows.length - REWARDS_SHOWN} more` }), table(rows.slice(REWARDS_SHOWN))));
  }
  fill($('lookup-result'), h('div', { class: 'lookup-grid' }, h('div', {}, out), h('div', {}, side)));
}

$('lookup-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = $('lookup-id').value.trim();
  if (id) lookup(id);
});

// ---------------------------------------------------------------- start

pollMetrics();
setInterval(pollMetrics, METRICS_EVERY_MS);
pollHealth();
setInterval(pollHealth, HEALTH_EVERY_MS);
setInterval(() => {
  if (shown && document.visibilityState === 'visible') lookup(shown, { quiet: true });
}, LOOKUP_EVERY_MS);
if (admin.token) signIn(admin.token, admin.name);
const wanted = new URLSearchParams(location.search).get('player');
if (wanted) lookup(wanted);
