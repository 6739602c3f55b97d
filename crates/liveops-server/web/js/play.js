// The demo game (`/play`): three small games whose points become real signed events through a
// guest session (`docs/api.md`), plus the player's XP, level, ranks, rewards with claims and
// receipts, and the live leaderboard.
//
// Sending: plays go into an outbox that a single loop flushes with POST /events/batch, at most
// BATCH_MAX events every FLUSH_MS. Those two numbers keep an honest player inside the default
// limits (FLOOD_MAX_PER_SEC 10 per player, RATE_LIMIT_MAX 50 requests a minute per IP), so a
// fast clicker is queued rather than refused. When the server refuses anyway (a stricter
// configuration, a block), the loop says so, honours Retry-After and backs off; an event keeps
// its eventId across retries, so a retry of something that did arrive is a harmless duplicate.
//
// Fairness: every play of a kind is worth the same XP. The guard judges deltaXp per activity
// against the player's own history; a steady reward per action keeps honest play far from an
// outlier, whatever the pace.

import { api, ApiFailure, failureOf, fill, fmt, h, levelBar, say } from './api.js';
import { mountBoard } from './board.js';
import { sessionHeaders, hasWebCrypto } from './sign.js';

const $ = (id) => document.getElementById(id);

const XP = { clicker: 50, memory: 150, reaction: 100 };
const FLUSH_MS = 1500;
const BATCH_MAX = 10;
const MAX_QUEUE = 200;
const BLOCKED_PAUSE_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
const REFRESH_MS = 2000;
const SESSION_KEY = 'liveops.guestSession';
const RECEIPTS_KEY = 'liveops.receipts';

// ---------------------------------------------------------------- messages

let toastTimer = null;
function toast(message, kind = '') {
  const t = $('toast');
  t.textContent = message;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 4000);
}

// ---------------------------------------------------------------- session

let session = null;

function loadSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
  } catch {
    return null;
  }
}

/** A current guest session, opened (or renewed for the same player) when needed. */
async function ensureSession({ renew = false, fresh = false } = {}) {
  const stored = fresh ? null : session || loadSession();
  if (!renew && stored && Date.parse(stored.expiresAt) - Date.now() > 60_000) {
    session = stored;
    showSession();
    return session;
  }
  const body = stored?.playerId ? JSON.stringify({ playerId: stored.playerId }) : '{}';
  $('session').textContent = 'opening session...';
  $('session').dataset.state = 'warn';
  for (let attempt = 0; ; attempt++) {
    try {
      session = await api('/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body, what: 'Opening a guest session' });
      localStorage.setItem(SESSION_KEY, JSON.stringify(session));
      showSession();
      return session;
    } catch (e) {
      $('session').textContent = 'no session';
      $('session').dataset.state = 'bad';
      say($('send-status'), e.message, 'error');
      if (e.status === 404 || e.status === 400) throw e; // disabled or refused: retrying will not help
      await sleep(Math.min(MAX_BACKOFF_MS, (e.retryAfter ?? 2 ** attempt) * 1000));
    }
  }
}

function showSession() {
  $('session').textContent = `guest session${hasWebCrypto() ? '' : ' (fallback signing)'}`;
  $('session').dataset.state = 'ok';
  $('player-id').textContent = session.playerId;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- outbox

const outbox = { queue: [], pausedUntil: 0, backoff: 0, accepted: 0, refused: 0, counter: 0 };

function randomHex(bytes) {
  // getRandomValues works outside secure contexts too (randomUUID does not).
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
}
const idPrefix = `w${Date.now().toString(36)}${randomHex(4)}`;

function play(activity) {
  if (!session) {
    toast('Still opening the session; try again in a moment.', 'warn');
    return false;
  }
  if (outbox.queue.length >= MAX_QUEUE) {
    toast(`Slow down: ${MAX_QUEUE} plays are waiting to be sent.`, 'warn');
    return false;
  }
  outbox.queue.push({
    eventId: `${idPrefix}-${(outbox.counter++).toString(36)}`,
    type: 'progression',
    playerId: session.playerId,
    ts: Math.floor(Date.now() / 1000),
    payload: { deltaXp: XP[activity], activity },
  });
  showOutbox();
  return true;
}

function showOutbox() {
  const paused = outbox.pausedUntil > Date.now();
  $('outbox').textContent = `${outbox.accepted} sent · ${outbox.queue.length} waiting${outbox.refused ? ` · ${outbox.refused} refused` : ''}${paused ? ` · paused ${Math.ceil((outbox.pausedUntil - Date.now()) / 1000)} s` : ''}`;
}

function pause(ms, message, kind = 'warn') {
  outbox.pausedUntil = Math.max(outbox.pausedUntil, Date.now() + ms);
  say($('send-status'), message, kind);
  toast(message, kind);
}

async function flush() {
  if (!outbox.queue.length || outbox.pausedUntil > Date.now() || !session) return;
  const batch = outbox.queue.slice(0, BATCH_MAX);
  const body = JSON.stringify({ events: batch });
  let resp;
  try {
    resp = await fetch('/events/batch', { method: 'POST', headers: await sessionHeaders(session, body), body, cache: 'no-store' });
  } catch (e) {
    outbox.backoff = Math.min(MAX_BACKOFF_MS, Math.max(2000, outbox.backoff * 2));
    pause(outbox.backoff, `Cannot reach the server (${e.message || e}); retrying in ${outbox.backoff / 1000} s.`, 'error');
    return;
  }
  if (!resp.ok) {
    const f = await failureOf(resp, 'Sending your plays');
    if (f.code === 'invalid_session' || f.code === 'invalid_signature') {
      // Expired or from a server with another secret: open a new session for the same player.
      say($('send-status'), `${f.message}. Opening a new session...`, 'warn');
      await ensureSession({ renew: true });
      return;
    }
    const wait = (f.retryAfter ?? 0) * 1000;
    if (resp.status === 429) {
      pause(Math.max(wait, 1000), `${f.message}. Your plays are kept and sent when allowed.`);
    } else if (resp.status >= 500 || resp.status === 401) {
      outbox.backoff = Math.min(MAX_BACKOFF_MS, Math.max(wait, 2000, outbox.backoff * 2));
      pause(outbox.backoff, `${f.message}. Retrying in ${Math.round(outbox.backoff / 1000)} s.`, 'error');
    } else {
      // Not retryable (400, 413, 415): drop the batch rather than loop on it.
      outbox.queue.splice(0, batch.length);
      outbox.refused += batch.length;
      say($('send-status'), f.message, 'error');
    }
    showOutbox();
    return;
  }
  outbox.backoff = 0;
  const { results } = await resp.json();
  const keep = [];
  let flooding = false;
  let blocked = null;
  for (const r of results) {
    const ev = batch[r.index];
    if (r.status === 202 || r.status === 208) outbox.accepted++;
    else if (r.status === 429) {
      flooding = true;
      keep.push(ev);
    } else if (r.status === 403 && r.error?.code === 'player_blocked') {
      // Plays made while blocked do not count: drop them, tell the player, try again later.
      outbox.refused++;
      blocked = r.error.message;
    } else if (r.status >= 500) keep.push(ev);
    else {
      outbox.refused++;
      say($('send-status'), `A play was refused: ${r.error?.message || `status ${r.status}`}`, 'error');
    }
  }
  outbox.queue.splice(0, batch.length, ...keep);
  if (blocked) pause(BLOCKED_PAUSE_MS, `You are blocked: ${blocked}. Plays made now are not counted.`, 'error');
  else if (flooding) pause(1000, 'Too many plays at once for the server: the rest are queued and sent shortly.');
  else if (!outbox.queue.length) say($('send-status'), '');
  showOutbox();
  refreshSoon();
}

async function flushLoop() {
  for (;;) {
    try {
      await flush();
    } catch (e) {
      say($('send-status'), `Sending failed: ${e.message || e}`, 'error');
    }
    showOutbox();
    await sleep(FLUSH_MS);
  }
}

// ---------------------------------------------------------------- progress, ranks, rewards

let lastLevel = null;
let refreshTimer = null;
/** `outbox.accepted` when the player was last found to have no progress; -1: look again. */
let noProgressAt = -1;
const receipts = (() => {
  try {
    return JSON.parse(localStorage.getItem(RECEIPTS_KEY) || '{}');
  } catch {
    return {};
  }
})();

function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 400);
}

async function getOrNull(path, what) {
  try {
    return await api(path, { what });
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 404) return null;
    throw e;
  }
}

async function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, REFRESH_MS);
  if (!session || document.visibilityState === 'hidden') return;
  const p = encodeURIComponent(session.playerId);
  // A new player has no progress (404) until a first play is applied: ask again only after
  // more plays were accepted, not every few seconds.
  if (noProgressAt === outbox.accepted) return;
  try {
    const [progress, rewards, ...ranks] = await Promise.all([
      getOrNull(`/players/${p}/progress`, 'Loading your progress'),
      getOrNull(`/players/${p}/rewards`, 'Loading your rewards'),
      // The friends-board form answers 200 with no entry for a player without a score.
      ...['daily', 'weekly', 'seasonal'].map((w) => api(`/leaderboard?window=${w}&players=${p}`, { what: `Loading your ${w} rank` }).then((b) => b.entries[0] ?? null)),
    ]);
    // Accepted plays may still be in the pipeline: keep asking until they show.
    noProgressAt = progress || outbox.accepted > 0 ? -1 : outbox.accepted;
    say($('me-status'), '');
    renderProgress(progress);
    ['daily', 'weekly', 'seasonal'].forEach((w, i) => {
      $(`rank-${w}`).textContent = ranks[i] ? `#${ranks[i].rank}` : '-';
    });
    renderRewards(rewards);
  } catch (e) {
    say($('me-status'), e.message, 'error');
  }
}

function renderProgress(progress) {
  if (!progress) {
    $('xp').textContent = '0';
    fill($('level'), levelBar(1, 0, 1000));
    return;
  }
  $('xp').textContent = fmt.int(progress.xp);
  fill($('level'), levelBar(progress.level, progress.xpIntoLevel, progress.xpForNextLevel));
  if (lastLevel != null && progress.level > lastLevel) toast(`Level up! You reached level ${progress.level}. Claim your reward.`, 'ok');
  lastLevel = progress.level;
}

function renderRewards(rewards) {
  if (!rewards || (!rewards.pending.length && !rewards.claimed.length)) {
    fill($('rewards'), h('p', { class: 'muted', text: 'Level up to earn rewards.' }));
    return;
  }
  const items = [];
  for (const r of rewards.pending) {
    items.push(
      h(
        'li',
        { dataset: { reward: r.rewardId } },
        h('strong', { text: r.item }),
        ` for reaching level ${r.level} `,
        h('button', { type: 'button', 'data-testid': 'claim', text: 'Claim', onclick: (ev) => claim(r.rewardId, ev.currentTarget) }),
      ),
    );
  }
  for (const r of rewards.claimed) {
    const receipt = receipts[r.rewardId];
    items.push(
      h(
        'li',
        { dataset: { reward: r.rewardId } },
        h('strong', { text: r.item }),
        ` for level ${r.level} `,
        h('span', { class: 'pill', dataset: { state: 'ok' }, text: 'claimed' }),
        receipt ? receiptView(receipt) : h('button', { type: 'button', class: 'link', text: 'show receipt', onclick: (ev) => claim(r.rewardId, ev.currentTarget) }),
      ),
    );
  }
  fill($('rewards'), h('ul', { class: 'plain' }, items));
}

function receiptView(r) {
  return h(
    'div',
    { class: 'receipt', 'data-testid': 'receipt' },
    h(
      'dl',
      { class: 'kv' },
      h('dt', { text: 'Item' }),
      h('dd', { text: r.item }),
      h('dt', { text: 'Receipt' }),
      h('dd', { class: 'mono', 'data-testid': 'receipt-id', text: r.receiptId }),
      h('dt', { text: 'Issued' }),
      h('dd', { text: fmt.time(new Date(r.timestamp * 1000).toISOString()) }),
      h('dt', { text: 'Signature' }),
      h('dd', { class: 'mono', text: r.sig }),
      h('dt', { text: 'Check' }),
      h('dd', { 'data-testid': 'receipt-check', text: r.check || 'not checked' }),
    ),
  );
}

async function claim(rewardId, button) {
  if (button) button.disabled = true;
  try {
    const body = JSON.stringify({ playerId: session.playerId, rewardId });
    const resp = await fetch('/rewards/claim', { method: 'POST', headers: await sessionHeaders(session, body), body, cache: 'no-store' }).catch((e) => {
      throw new ApiFailure(`Claiming the reward: the server did not answer (${e.message || e})`, 0, null, null);
    });
    if (!resp.ok) {
      const f = await failureOf(resp, 'Claiming the reward');
      if (f.code === 'invalid_session') await ensureSession({ renew: true });
      throw f;
    }
    const receipt = await resp.json();
    // The server checks its own signature: proof the receipt is genuine, shown to the player.
    try {
      const v = await api('/receipts/verify', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(receipt), what: 'Checking the receipt' });
      receipt.check = v.valid ? (v.expired ? 'genuine, expired' : 'genuine, verified by the server') : 'NOT valid';
    } catch (e) {
      receipt.check = e.message;
    }
    receipts[rewardId] = receipt;
    localStorage.setItem(RECEIPTS_KEY, JSON.stringify(receipts));
    toast(`Claimed ${receipt.item}!`, 'ok');
    await refresh();
  } catch (e) {
    say($('me-status'), e.message, 'error');
    toast(e.message, 'error');
    if (button) button.disabled = false;
  }
}

// ---------------------------------------------------------------- the games

function selectGame(name) {
  for (const b of document.querySelectorAll('[data-game]')) b.setAttribute('aria-selected', String(b.dataset.game === name));
  for (const p of document.querySelectorAll('[data-panel]')) p.hidden = p.dataset.panel !== name;
}
for (const b of document.querySelectorAll('[data-game]')) b.addEventListener('click', () => selectGame(b.dataset.game));

$('click-xp').textContent = XP.clicker;
$('memory-xp').textContent = XP.memory;
$('reaction-xp').textContent = XP.reaction;

// Clicker: one event per click, batched by the outbox.
$('click').addEventListener('click', () => {
  if (play('clicker')) {
    const b = $('click');
    b.textContent = `+${XP.clicker}`;
    clearTimeout(b._t);
    b._t = setTimeout(() => (b.textContent = 'Click!'), 250);
  }
});

// Memory: repeat a growing sequence of pads; each repeated round is one event.
const memory = { seq: [], pos: 0, accepting: false, round: 0 };
const pads = [...document.querySelectorAll('.pad')];
async function flash(i, ms = 420) {
  pads[i].classList.add('lit');
  await sleep(ms);
  pads[i].classList.remove('lit');
  await sleep(150);
}
async function memoryRound() {
  memory.accepting = false;
  memory.seq.push(Math.floor(Math.random() * 4));
  memory.pos = 0;
  $('memory-say').textContent = `Round ${memory.round + 1}: watch`;
  await sleep(400);
  for (const i of memory.seq) await flash(i);
  $('memory-say').textContent = `Round ${memory.round + 1}: your turn`;
  memory.accepting = true;
}
$('memory-start').addEventListener('click', () => {
  memory.seq = [];
  memory.round = 0;
  $('memory-start').hidden = true;
  memoryRound();
});
pads.forEach((pad, i) =>
  pad.addEventListener('click', () => {
    if (!memory.accepting) return;
    flash(i, 150);
    if (memory.seq[memory.pos] !== i) {
      memory.accepting = false;
      $('memory-say').textContent = `Missed! You repeated ${memory.round} round${memory.round === 1 ? '' : 's'}.`;
      $('memory-start').textContent = 'Play again';
      $('memory-start').hidden = false;
      return;
    }
    memory.pos++;
    if (memory.pos === memory.seq.length) {
      memory.round++;
      play('memory');
      $('memory-say').textContent = `Round ${memory.round} done: +${XP.memory} XP`;
      memory.accepting = false;
      setTimeout(memoryRound, 700);
    }
  }),
);

// Reaction: wait for green, tap; a tap before green counts nothing.
const reaction = { state: 'idle', goAt: 0, timer: null, best: null };
const zone = $('reaction');
function setZone(state, text) {
  reaction.state = state;
  zone.dataset.state = state;
  zone.textContent = text;
}
zone.addEventListener('pointerdown', () => {
  if (reaction.state === 'idle' || reaction.state === 'done') {
    setZone('wait', 'Wait for green...');
    reaction.timer = setTimeout(() => {
      reaction.goAt = performance.now();
      setZone('go', 'Tap!');
    }, 1200 + Math.random() * 2300);
  } else if (reaction.state === 'wait') {
    clearTimeout(reaction.timer);
    setZone('done', 'Too soon! Tap to try again');
  } else if (reaction.state === 'go') {
    const ms = Math.round(performance.now() - reaction.goAt);
    reaction.best = reaction.best == null ? ms : Math.min(reaction.best, ms);
    $('reaction-last').textContent = `${ms} ms`;
    $('reaction-best').textContent = `${reaction.best} ms`;
    play('reaction');
    setZone('done', `${ms} ms: +${XP.reaction} XP. Tap again`);
  }
});

// ---------------------------------------------------------------- start

$('new-player').addEventListener('click', async () => {
  if (outbox.queue.length && !confirm(`${outbox.queue.length} plays are not sent yet; start over anyway?`)) return;
  outbox.queue = [];
  outbox.accepted = 0;
  outbox.refused = 0;
  lastLevel = null;
  noProgressAt = -1;
  for (const k of Object.keys(receipts)) delete receipts[k];
  localStorage.removeItem(RECEIPTS_KEY);
  localStorage.removeItem(SESSION_KEY);
  session = null;
  await ensureSession({ fresh: true });
  board.rerender();
  refresh();
});

const board = mountBoard($('board'), { limit: 10, highlight: () => session?.playerId ?? null });
fill($('level'), levelBar(1, 0, 1000));
showOutbox();
ensureSession()
  .then(() => {
    board.rerender();
    refresh();
    flushLoop();
  })
  .catch(() => {
    /* the reason is on screen already (ensureSession) */
  });
document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && refresh());
