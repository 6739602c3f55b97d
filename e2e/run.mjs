// End-to-end tests of the dashboard (`/`) and the demo game (`/play`) in a real headless
// Chromium, driven by playwright-core (no browser download: Debian's `chromium` is used).
//
// Run by `cargo test -p liveops --test browser`, which starts a real `liveops serve` and passes:
//   BASE_URL       the server, e.g. http://127.0.0.1:38123
//   ADMIN_TOKEN    the server's admin token
//   CHROMIUM_PATH  the browser binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR  where screenshots go (default e2e/artifacts, git-ignored)
// Exits non-zero with a message on the first failed check; screenshots of the failure go to
// ARTIFACTS_DIR as well.

import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const TOKEN = process.env.ADMIN_TOKEN;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS_DIR || fileURLToPath(new URL('./artifacts/', import.meta.url));
const TIMEOUT = 20_000;

if (!BASE || !TOKEN) {
  console.error('BASE_URL and ADMIN_TOKEN must be set (cargo test -p liveops --test browser sets them)');
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

class Failed extends Error {}
function check(cond, message) {
  if (!cond) throw new Failed(message);
}

// ---------------------------------------------------------------- API helpers (the test's own)

async function json(path, opts = {}) {
  const r = await fetch(BASE + path, opts);
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, text };
}

/** A guest session for `playerId` and a function posting signed JSON with it. */
async function guest(playerId) {
  const s = await json('/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ playerId }) });
  check(s.status === 200, `POST /sessions: ${s.status} ${s.text}`);
  const post = async (path, value) => {
    const body = JSON.stringify(value);
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = createHmac('sha256', s.body.key).update(`${body}.${ts}`).digest('hex');
    return json(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Session': s.body.token, 'X-Timestamp': ts, 'X-Signature': sig },
      body,
    });
  };
  return { session: s.body, post };
}

/** POST /events/batch and POST /events requests so far, from the server's metrics. */
async function requestCounts() {
  const stats = await (await fetch(`${BASE}/metrics`)).text();
  const count = (path) =>
    [...stats.matchAll(/^http_requests_total\{([^}]*)\} (\d+)/gm)].filter((m) => m[1].includes(`path="${path}"`)).reduce((a, m) => a + Number(m[2]), 0);
  return { batch: count('/events/batch'), single: count('/events') };
}

async function until(what, fn, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Failed(`timed out waiting for ${what}`);
}

// ---------------------------------------------------------------- browser helpers

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Root in a container has no user namespaces for Chromium's sandbox; /dev/shm is small there.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});

const pageErrors = [];
async function open(context, path, name) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // Any script error, CSP violation, failed asset load or unexpected API error is a failure
  // of the page. Chromium also logs every 4xx answer to fetch() as a console error without its
  // URL; those are judged by URL from the responses instead.
  page.on('pageerror', (e) => pageErrors.push(`${name}: uncaught ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(`${name}: console error: ${m.text()}`);
  });
  page.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    // A new player has no progress or rewards yet: 404 is the API's answer, not an error.
    const expected = r.status() === 404 && /^\/players\/[A-Za-z0-9_]+\/(progress|rewards)$/.test(path);
    if (r.status() >= 400 && !expected) pageErrors.push(`${name}: ${r.request().method()} ${path} answered ${r.status()}`);
  });
  page.on('requestfailed', (r) => {
    // An EventSource closed by navigation or page close is not a failure.
    if (!r.url().includes('/leaderboard/stream')) pageErrors.push(`${name}: request failed ${r.url()} ${r.failure()?.errorText}`);
  });
  const t0 = Date.now();
  const resp = await page.goto(BASE + path, { waitUntil: 'load' });
  check(resp && resp.status() === 200, `${path} answered ${resp && resp.status()}`);
  log(`${name}: ${path} loaded in ${Date.now() - t0} ms`);
  return page;
}

const shot = (page, name, fullPage = true) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage });
const text = (page, sel) => page.locator(sel).first().innerText();

async function noHorizontalScroll(page, name) {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  check(scroll <= inner + 1, `${name}: the page scrolls sideways (${scroll}px content in a ${inner}px window)`);
}

// ---------------------------------------------------------------- the scenarios

const desktop = await browser.newContext({ viewport: { width: 1366, height: 900 } });
const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
let current = null;

try {
  // The dashboard is opened first and never reloaded: the game's player must appear on its
  // live leaderboard by itself.
  current = await open(desktop, '/', 'dashboard');
  const dash = current;
  await dash.evaluate(() => {
    window.__notReloaded = true;
  });
  await dash.locator('[data-testid=board-live][data-state=live]').waitFor();
  await dash.locator('#health[data-state=ok]').waitFor();
  log('dashboard: leaderboard stream live, service ready');

  // ---- the game: clicker until a level-up, claim, receipt
  current = await open(desktop, '/play', 'game');
  const game = current;
  await game.locator('[data-testid=session][data-state=ok]').waitFor();
  const player = (await text(game, '[data-testid=player-id]')).trim();
  check(/^guest_[a-z]{10}$/.test(player), `unexpected guest id ${player}`);
  const signing = await game.evaluate(async () => {
    const m = await import('/assets/js/sign.js');
    return { webcrypto: m.hasWebCrypto(), failures: await m.selfTest() };
  });
  check(signing.webcrypto, 'crypto.subtle is missing on http://127.0.0.1 (a secure context)');
  // The vendored HMAC against the RFC 4231 test vectors, and against WebCrypto.
  check(signing.failures.length === 0, `signing self-test: ${signing.failures.join('; ')}`);
  log(`game: playing as ${player}`);

  const before = await requestCounts();
  const clicks = 22; // 50 XP each: 1100 XP, level 2
  for (let i = 0; i < clicks; i++) await game.click('[data-testid=click]', { delay: 10 });
  await until('the XP to reach 1,100', async () => (await text(game, '[data-testid=xp]')) === '1,100');
  await until('level 2', async () => (await text(game, '[data-testid=level]')).includes('Level 2'));
  const outbox = await text(game, '[data-testid=outbox]');
  check(outbox.startsWith(`${clicks} sent`), `outbox says "${outbox}"`);
  log('game: level 2 reached with batched clicks');

  // The clicks went in batches, never one request per click.
  const after = await requestCounts();
  const batches = after.batch - before.batch;
  const singles = after.single - before.single;
  check(batches >= 1 && batches < clicks && singles === 0, `clicks were not batched: ${batches} batch requests, ${singles} single ones for ${clicks} clicks`);

  await game.locator('[data-testid=claim]').first().click();
  const receipt = game.locator('[data-testid=receipt]').first();
  await receipt.waitFor();
  const receiptId = (await text(game, '[data-testid=receipt-id]')).trim();
  check(/^[0-9a-f-]{36}$/.test(receiptId), `receipt id "${receiptId}"`);
  await until('the server to verify the receipt', async () => (await text(game, '[data-testid=receipt-check]')).includes('genuine'));
  const rewards = await json(`/players/${player}/rewards`);
  check(rewards.body.claimed.some((r) => r.receiptId === receiptId), `the claimed reward does not carry receipt ${receiptId}: ${rewards.text}`);
  await until('the weekly rank', async () => (await text(game, '[data-testid=rank-weekly]')).startsWith('#'));
  log(`game: reward claimed, receipt ${receiptId} verified`);
  await shot(game, 'play-desktop');

  // ---- the live leaderboard on the dashboard, without a reload
  current = dash;
  await dash.locator(`[data-testid=board] tr[data-player="${player}"]`).waitFor();
  check(await dash.evaluate(() => window.__notReloaded === true), 'the dashboard was reloaded');
  const row = await text(dash, `[data-testid=board] tr[data-player="${player}"]`);
  check(row.includes('1,100'), `leaderboard row "${row}"`);
  log('dashboard: the player appeared on the live leaderboard');

  // ---- the operator: a quarantined event, released, and the XP changes
  const cheater = `cheat_${randomBytes(4).toString('hex')}`;
  const c = await guest(cheater);
  const honest = await c.post('/events', { eventId: `${cheater}-ok`, type: 'progression', playerId: cheater, ts: Math.floor(Date.now() / 1000), payload: { deltaXp: 100, activity: 'quest_completion' } });
  check(honest.status === 202, `honest event: ${honest.status} ${honest.text}`);
  const bigId = `${cheater}-big`;
  const big = await c.post('/events', { eventId: bigId, type: 'progression', playerId: cheater, ts: Math.floor(Date.now() / 1000), payload: { deltaXp: 20000, activity: 'quest_completion' } });
  check(big.status === 202, `event over MAX_DELTA_XP: ${big.status} ${big.text}`);
  await until('the big event to be quarantined', async () => {
    const f = await json(`/fairness/flags?status=quarantined&playerId=${cheater}`);
    return f.body?.flags?.some((x) => x.eventId === bigId);
  });
  log(`operator: ${bigId} is quarantined`);

  await dash.fill('#admin-token', TOKEN);
  await dash.fill('#admin-name', 'e2e-operator');
  await dash.click('#admin-login button[type=submit]');
  await dash.locator('#admin-panels').waitFor();
  const queued = dash.locator(`[data-testid=quarantine] tr[data-event="${bigId}"]`);
  await queued.waitFor();
  await dash.fill('#lookup-id', cheater);
  await dash.click('#lookup-form button[type=submit]');
  await until('the lookup to show 100 XP', async () => (await dash.locator('[data-testid=lookup-xp]').count()) > 0 && (await text(dash, '[data-testid=lookup-xp]')) === '100');
  await shot(dash, 'dashboard-operator-before-release');
  await queued.locator('button', { hasText: 'Release' }).click();
  await queued.waitFor({ state: 'detached' });
  await until('the lookup to show 20,100 XP', async () => (await text(dash, '[data-testid=lookup-xp]')) === '20,100');
  await until('the audit log to record the release', async () => (await text(dash, '[data-testid=audit]')).includes(bigId));
  const auditRow = await text(dash, '[data-testid=audit]');
  check(auditRow.includes('e2e-operator'), 'the audit log does not name the operator');
  log('operator: released; the player\'s XP went from 100 to 20,100');
  await dash.waitForTimeout(2500); // one more chart sample with the traffic of the run
  await shot(dash, 'dashboard-desktop');

  // ---- the game tells a blocked player, and keeps working
  const blocked = await json(`/admin/players/${player}/block`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ durationSec: 60, reason: 'e2e' }) });
  check(blocked.status === 200, `blocking: ${blocked.status} ${blocked.text}`);
  current = game;
  await game.click('[data-testid=click]');
  await until('the game to say the player is blocked', async () => (await text(game, '[data-testid=send-status]')).includes('blocked'));
  const unblocked = await json(`/admin/players/${player}/block`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
  check(unblocked.status === 200, `unblocking: ${unblocked.status}`);
  log('game: a refusal (403 blocked) is shown and the game backs off');

  // ---- phone width: both pages usable, nothing scrolls sideways
  current = await open(phone, '/play', 'game-phone');
  await current.locator('[data-testid=session][data-state=ok]').waitFor();
  await current.click('[data-testid=click]');
  await noHorizontalScroll(current, '/play on a phone');
  await shot(current, 'play-phone');
  current = await open(phone, '/', 'dashboard-phone');
  await current.locator('[data-testid=board-live][data-state=live]').waitFor();
  await current.locator('#health[data-state=ok]').waitFor();
  await noHorizontalScroll(current, '/ on a phone');
  await current.waitForTimeout(2200); // the charts need two samples
  await shot(current, 'dashboard-phone');
  log('phone layouts: no sideways scrolling');

  // ---- plain http from another machine on the LAN: no WebCrypto, the vendored HMAC signs
  // An insecure context as the page sees it: `crypto.subtle` is undefined.
  const lan = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  await lan.addInitScript(() => Object.defineProperty(Crypto.prototype, 'subtle', { get: () => undefined, configurable: true }));
  const vendored = [];
  lan.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith('/assets/vendor/noble-hashes/')) vendored.push(`${path} ${r.status()} ${r.headers()['content-type']}`);
  });
  current = await open(lan, '/play', 'game-without-webcrypto');
  await current.locator('[data-testid=session][data-state=ok]').waitFor();
  check(await current.evaluate(() => !globalThis.crypto?.subtle), 'crypto.subtle is still defined');
  const lanPlayer = (await text(current, '[data-testid=player-id]')).trim();
  for (let i = 0; i < 2; i++) await current.click('[data-testid=click]', { delay: 10 });
  // The server applies only correctly signed events: 100 XP proves the vendored HMAC.
  await until(`${lanPlayer}'s two clicks to be applied`, async () => (await json(`/players/${lanPlayer}/progress`)).body?.xp === 100);
  check(
    vendored.some((v) => v.startsWith('/assets/vendor/noble-hashes/hmac.js 200 text/javascript')),
    `the vendored HMAC was not loaded as JavaScript: ${vendored.join('; ') || 'no request'}`,
  );
  const lanSelfTest = await current.evaluate(async () => (await import('/assets/js/sign.js')).selfTest());
  check(lanSelfTest.length === 0, `vendored HMAC self-test: ${lanSelfTest.join('; ')}`);
  await lan.close();
  log('game without WebCrypto: signed with the vendored HMAC, RFC 4231 vectors pass');

  check(pageErrors.length === 0, `the pages reported errors:\n  ${pageErrors.join('\n  ')}`);
  log(`all browser checks passed; screenshots in ${ARTIFACTS}`);
} catch (e) {
  if (current) await shot(current, 'failure').catch(() => {});
  console.error(`FAILED: ${e instanceof Failed ? e.message : e.stack || e}`);
  if (pageErrors.length) console.error(`page errors:\n  ${pageErrors.join('\n  ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
