// The JSON API as the pages use it: one fetch wrapper that turns every failure (network,
// non-JSON, an error body) into an ApiFailure whose message a person can read, plus the small
// DOM and formatting helpers both pages share. Data goes into the page only as text
// (textContent), never as HTML: failed-event bodies and reasons are attacker-controlled.

/** Words for the API error codes (docs/api.md), shown before the server's own message. */
const CODE_WORDS = {
  rate_limited: 'Too many requests from this browser',
  player_flooding: 'Too many events for this player',
  player_blocked: 'The player is blocked',
  invalid_signature: 'The request signature was refused',
  missing_signature: 'The request was not signed',
  stale_timestamp: 'The request timestamp was refused (is this computer\'s clock right?)',
  invalid_session: 'The guest session is no longer valid',
  session_player_mismatch: 'This session belongs to another player',
  unauthorized: 'Not authorised',
  not_found: 'Not found',
  invalid_request: 'Invalid request',
  invalid_event: 'Invalid event',
  invalid_json: 'Invalid JSON',
  conflict: 'Not possible in the current state',
  idempotency_key_reuse: 'Idempotency key reused with a different body',
  unavailable: 'The service is temporarily unavailable',
  payload_too_large: 'The request is too large',
  unsupported_media_type: 'Wrong content type',
  internal: 'Internal server error',
};

export class ApiFailure extends Error {
  /**
   * @param {string} message  for people
   * @param {number} status   HTTP status, 0 when the server was not reached
   * @param {string|null} code  the API error code, if the server sent one
   * @param {number|null} retryAfter  seconds from Retry-After, if sent
   */
  constructor(message, status, code, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Seconds from a Retry-After header (seconds or an HTTP date); null if absent or unreadable. */
export function retryAfterSeconds(headers) {
  const v = headers.get('Retry-After');
  if (!v) return null;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(0, n);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/** The failure described by a non-2xx response (its JSON error body, when there is one). */
export async function failureOf(resp, what) {
  let code = null;
  let detail = '';
  const text = await resp.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    code = body?.error?.code ?? null;
    detail = body?.error?.message ?? '';
    if (body?.error?.field) detail += ` (field ${body.error.field})`;
  } catch {
    detail = text.trim().slice(0, 200);
  }
  const words = (code && CODE_WORDS[code]) || `HTTP ${resp.status} ${resp.statusText}`.trim();
  const retry = retryAfterSeconds(resp.headers);
  let message = `${what}: ${words}`;
  if (detail && detail.toLowerCase() !== words.toLowerCase()) message += ` - ${detail}`;
  if (retry != null) message += ` (retry in ${Math.ceil(retry)} s)`;
  return new ApiFailure(message, resp.status, code, retry);
}

/**
 * fetch + JSON with errors in words. `what` names the action for the message ("Loading the
 * leaderboard"). Returns the parsed body (or the text when `text: true`).
 */
export async function api(path, { method = 'GET', headers = {}, body, what = path, text = false } = {}) {
  let resp;
  try {
    resp = await fetch(path, { method, headers, body, cache: 'no-store' });
  } catch (e) {
    throw new ApiFailure(`${what}: the server did not answer (${e.message || e}); is it running?`, 0, null, null);
  }
  if (!resp.ok) throw await failureOf(resp, what);
  if (text) return resp.text();
  try {
    return await resp.json();
  } catch {
    throw new ApiFailure(`${what}: the server's answer was not JSON`, resp.status, null, null);
  }
}

/** Creates an element; `attrs` may hold `class`, `text`, `on<event>` handlers, `dataset`, others as attributes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c != null && c !== false));
}

/** Shows `message` in a status line; `kind` is '', 'ok', 'warn' or 'error'. */
export function say(el, message, kind = '') {
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = !message;
}

export const fmt = {
  int: (n) => (n == null ? '-' : Number(n).toLocaleString('en-US')),
  time: (iso) => {
    if (!iso) return '-';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  },
  /** "2d 03:04:05" until `iso`, or "now" once passed. */
  countdown: (iso) => {
    const ms = Date.parse(iso) - Date.now();
    if (!(ms > 0)) return 'now';
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, '0');
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
    const ss = String(s % 60).padStart(2, '0');
    return `${d > 0 ? `${d}d ` : ''}${hh}:${mm}:${ss}`;
  },
  rate: (x) => (x == null ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)),
};

/** A level bar: `into` of `span` XP filled, with the numbers as text for screen readers too. */
export function levelBar(level, into, span) {
  const pct = span > 0 ? Math.min(100, Math.max(0, (100 * into) / span)) : 0;
  const fillEl = h('div', { class: 'bar-fill' });
  // CSSOM, not a style attribute: the page's CSP forbids inline style attributes.
  fillEl.style.width = `${pct}%`;
  return h(
    'div',
    { class: 'level' },
    h('div', { class: 'level-head' }, h('strong', { text: `Level ${level}` }), h('span', { class: 'muted', text: `${fmt.int(into)} / ${fmt.int(span)} XP to level ${level + 1}` })),
    h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(span), 'aria-valuenow': String(into), 'aria-label': `Level ${level} progress` }, fillEl),
  );
}
