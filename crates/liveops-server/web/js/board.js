// The live leaderboard panel both pages show: window tabs, the period id, a countdown to
// nextReset, and the top entries, kept current by GET /leaderboard/stream (SSE).
//
// EventSource reconnects by itself after a dropped connection; it gives up for good only when
// the server answers with an error status, and it cannot read that answer. Then the same
// parameters go to GET /leaderboard, which validates them identically and returns the error in
// words, and the panel retries after a pause.

import { api, fill, fmt, h, say } from './api.js';

const WINDOWS = ['daily', 'weekly', 'seasonal'];
const RETRY_MS = 5000;

/**
 * Mounts the panel into `root`.
 * @param {HTMLElement} root
 * @param {{limit?: number, initial?: string, highlight?: () => string|null, onPlayer?: (id: string) => void}} opts
 * @returns {{select: (w: string) => void, last: () => object|null}}
 */
export function mountBoard(root, { limit = 10, initial = 'weekly', highlight = () => null, onPlayer = null } = {}) {
  let current = null;
  let source = null;
  let retryTimer = null;
  let snapshot = null;

  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Leaderboard window' });
  const period = h('span', { class: 'period', 'data-testid': 'board-period' });
  const countdown = h('span', { class: 'countdown', 'data-testid': 'board-countdown' });
  const live = h('span', { class: 'live', 'data-testid': 'board-live', text: 'connecting' });
  const total = h('span', { class: 'muted' });
  const status = h('p', { class: 'status', hidden: true, role: 'status' });
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'board', 'data-testid': 'board' },
    h('thead', {}, h('tr', {}, h('th', { text: '#' }), h('th', { text: 'Player' }), h('th', { class: 'num', text: 'Score' }))),
    body,
  );
  for (const w of WINDOWS) {
    tabs.append(h('button', { type: 'button', role: 'tab', dataset: { window: w }, text: w, onclick: () => select(w) }));
  }
  fill(
    root,
    tabs,
    h('div', { class: 'board-meta' }, h('span', {}, 'Period ', period), h('span', {}, 'Resets in ', countdown), total, live),
    status,
    h('div', { class: 'table-wrap' }, table),
  );

  function render(data) {
    snapshot = data;
    period.textContent = data.period;
    total.textContent = `${fmt.int(data.total)} player${data.total === 1 ? '' : 's'}`;
    tick();
    const me = highlight();
    if (!data.entries.length) {
      fill(body, h('tr', {}, h('td', { colspan: '3', class: 'muted', text: 'No scores in this period yet.' })));
      return;
    }
    fill(
      body,
      data.entries.map((e) => {
        const name = onPlayer
          ? h('button', { type: 'button', class: 'link', text: e.playerId, onclick: () => onPlayer(e.playerId) })
          : e.playerId;
        return h(
          'tr',
          { class: e.playerId === me ? 'me' : null, dataset: { player: e.playerId } },
          h('td', { text: String(e.rank) }),
          h('td', {}, name),
          h('td', { class: 'num', text: fmt.int(e.score) }),
        );
      }),
    );
  }

  function tick() {
    if (snapshot) countdown.textContent = fmt.countdown(snapshot.nextReset);
  }
  setInterval(tick, 1000);

  function connect() {
    clearTimeout(retryTimer);
    source?.close();
    const w = current;
    const url = `/leaderboard/stream?window=${encodeURIComponent(w)}&limit=${limit}`;
    source = new EventSource(url);
    live.textContent = 'connecting';
    live.dataset.state = 'connecting';
    source.addEventListener('open', () => {
      live.textContent = 'live';
      live.dataset.state = 'live';
      say(status, '');
    });
    source.addEventListener('leaderboard', (ev) => {
      if (w !== current) return;
      try {
        render(JSON.parse(ev.data));
      } catch (e) {
        say(status, `The leaderboard update could not be read: ${e.message}`, 'error');
      }
    });
    source.addEventListener('error', async () => {
      if (w !== current) return;
      if (source.readyState === EventSource.CONNECTING) {
        live.textContent = 'reconnecting';
        live.dataset.state = 'connecting';
        return;
      }
      // Closed for good: find out why, in words, and try again later.
      live.textContent = 'offline';
      live.dataset.state = 'offline';
      try {
        render(await api(`/leaderboard?window=${encodeURIComponent(w)}&limit=${limit}`, { what: 'Loading the leaderboard' }));
        say(status, `The live update stream is unavailable; showing a snapshot and retrying in ${RETRY_MS / 1000} s.`, 'warn');
      } catch (e) {
        say(status, e.message, 'error');
      }
      retryTimer = setTimeout(connect, RETRY_MS);
    });
  }

  function select(w) {
    if (!WINDOWS.includes(w) || w === current) return;
    current = w;
    for (const b of tabs.children) b.setAttribute('aria-selected', String(b.dataset.window === w));
    snapshot = null;
    fill(body);
    connect();
  }

  select(initial);
  return { select, last: () => snapshot, rerender: () => snapshot && render(snapshot) };
}
