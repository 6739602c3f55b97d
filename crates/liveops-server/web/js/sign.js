// HMAC-SHA256 request signatures for guest sessions (`docs/api.md`): X-Signature is the
// hex HMAC of `<body>.<timestamp>` with the session key's text as the key bytes.
//
// WebCrypto (`crypto.subtle`) only exists in a secure context: https, or http on localhost /
// 127.0.0.1. The demo is often opened from another machine on the LAN over plain http
// (http://192.168.1.20:8080/play), where `crypto.subtle` is undefined; there the HMAC comes from
// the vendored noble-hashes (web/vendor/noble-hashes/README.md), loaded on first use so a page in
// a secure context never fetches it. `selfTest()`, which the browser test runs, checks that
// library against the RFC 4231 test vectors and against WebCrypto.

const enc = new TextEncoder();

/** The vendored HMAC-SHA256: `(key, msg) => 32 bytes`, both Uint8Array. Loaded once, on demand. */
let nobleHmac;
async function vendoredHmac() {
  if (!nobleHmac) {
    const [{ hmac }, { sha256 }] = await Promise.all([
      import('../vendor/noble-hashes/hmac.js'),
      import('../vendor/noble-hashes/sha2.js'),
    ]);
    nobleHmac = (key, msg) => hmac(sha256, key, msg);
  }
  return nobleHmac;
}

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** True when WebCrypto is usable here (a secure context). */
export const hasWebCrypto = () => typeof crypto !== 'undefined' && !!crypto.subtle;

const keyCache = new Map();

/** Hex HMAC-SHA256 of the text `message` with the text `keyText` as key bytes. */
export async function hmacHex(keyText, message, { forceVendored = false } = {}) {
  const msg = enc.encode(message);
  if (hasWebCrypto() && !forceVendored) {
    let key = keyCache.get(keyText);
    if (!key) {
      key = await crypto.subtle.importKey('raw', enc.encode(keyText), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      keyCache.clear(); // one session key at a time
      keyCache.set(keyText, key);
    }
    return hex(new Uint8Array(await crypto.subtle.sign('HMAC', key, msg)));
  }
  return hex((await vendoredHmac())(enc.encode(keyText), msg));
}

/**
 * The headers of a guest-session request: the MAC covers `<body>.<timestamp>` (replay guard,
 * `docs/api.md`) and X-Session carries the token.
 */
export async function sessionHeaders(session, body) {
  const ts = String(Math.floor(Date.now() / 1000));
  return {
    'Content-Type': 'application/json',
    'X-Session': session.token,
    'X-Timestamp': ts,
    'X-Signature': await hmacHex(session.key, `${body}.${ts}`),
  };
}

const fromHex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const repeat = (byte, n) => new Uint8Array(n).fill(byte);

/**
 * RFC 4231 section 4, HMAC-SHA-256: key, data, expected MAC (case 5's MAC is truncated to 128
 * bits, so the comparison is on the expected length).
 */
const RFC_4231 = [
  [1, repeat(0x0b, 20), enc.encode('Hi There'),
    'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
  [2, enc.encode('Jefe'), enc.encode('what do ya want for nothing?'),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
  [3, repeat(0xaa, 20), repeat(0xdd, 50),
    '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
  [4, fromHex('0102030405060708090a0b0c0d0e0f10111213141516171819'), repeat(0xcd, 50),
    '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
  [5, repeat(0x0c, 20), enc.encode('Test With Truncation'),
    'a3b6167473100ee06e0c796c2955552b'],
  [6, repeat(0xaa, 131), enc.encode('Test Using Larger Than Block-Size Key - Hash Key First'),
    '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
  [7, repeat(0xaa, 131),
    enc.encode('This is a test using a larger than block-size key and a larger than block-size data. ' +
      'The key needs to be hashed before being used by the HMAC algorithm.'),
    '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2'],
];

/**
 * Checks the vendored HMAC against the RFC 4231 test vectors and, when present, against
 * WebCrypto on keys and messages around the 64-byte block size. Returns a list of failures.
 */
export async function selfTest() {
  const failures = [];
  const mac = await vendoredHmac();
  for (const [n, key, data, want] of RFC_4231) {
    const got = hex(mac(key, data)).slice(0, want.length);
    if (got !== want) failures.push(`RFC 4231 case ${n}: ${got}`);
  }
  if (hasWebCrypto()) {
    for (const len of [0, 55, 56, 63, 64, 65, 200]) {
      const key = 'k'.repeat(len + 7);
      const msg = 'm'.repeat(len);
      const a = await hmacHex(key, msg);
      const b = await hmacHex(key, msg, { forceVendored: true });
      if (a !== b) failures.push(`length ${len}: WebCrypto ${a} vs vendored ${b}`);
    }
  }
  return failures;
}
