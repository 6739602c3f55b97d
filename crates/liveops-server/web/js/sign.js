// HMAC-SHA256 request signatures for guest sessions (SPEC sections 4 and 8): X-Signature is the
// hex HMAC of `<body>.<timestamp>` with the session key's text as the key bytes.
//
// WebCrypto (`crypto.subtle`) only exists in a secure context: https, or http on localhost /
// 127.0.0.1. The demo is often opened from another machine on the LAN over plain http
// (http://192.168.1.20:8080/play), where `crypto.subtle` is undefined, so this file carries a
// small SHA-256 and HMAC of its own (FIPS 180-4, RFC 2104) used only then. It is checked against
// WebCrypto and known vectors by `selfTest()`, which the browser test runs. The key protects a
// one-hour guest session of a demo game; nothing secret is at stake in that fallback path.

const enc = new TextEncoder();

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 of `data` (Uint8Array), as 32 bytes. */
export function sha256(data) {
  const bitLen = data.length * 8;
  // Message, 0x80, zero padding, 64-bit big-endian length: a multiple of 64 bytes.
  const total = Math.ceil((data.length + 9) / 64) * 64;
  const buf = new Uint8Array(total);
  buf.set(data);
  buf[data.length] = 0x80;
  const view = new DataView(buf.buffer);
  view.setUint32(total - 8, Math.floor(bitLen / 2 ** 32));
  view.setUint32(total - 4, bitLen >>> 0);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
      const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, hh] = H;
    for (let i = 0; i < 64; i++) {
      const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + W[i]) | 0;
      const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  H.forEach((x, i) => ov.setUint32(4 * i, x));
  return out;
}

/** HMAC-SHA256 (RFC 2104) of `msg` with `key`, both Uint8Array, as 32 bytes. */
export function hmacSha256Fallback(key, msg) {
  const block = 64;
  let k = key.length > block ? sha256(key) : key;
  const padded = new Uint8Array(block);
  padded.set(k);
  const inner = new Uint8Array(block + msg.length);
  const outer = new Uint8Array(block + 32);
  for (let i = 0; i < block; i++) {
    inner[i] = padded[i] ^ 0x36;
    outer[i] = padded[i] ^ 0x5c;
  }
  inner.set(msg, block);
  outer.set(sha256(inner), block);
  return sha256(outer);
}

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** True when WebCrypto is usable here (a secure context). */
export const hasWebCrypto = () => typeof crypto !== 'undefined' && !!crypto.subtle;

const keyCache = new Map();

/** Hex HMAC-SHA256 of the text `message` with the text `keyText` as key bytes. */
export async function hmacHex(keyText, message, { forceFallback = false } = {}) {
  const msg = enc.encode(message);
  if (hasWebCrypto() && !forceFallback) {
    let key = keyCache.get(keyText);
    if (!key) {
      key = await crypto.subtle.importKey('raw', enc.encode(keyText), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      keyCache.clear(); // one session key at a time
      keyCache.set(keyText, key);
    }
    return hex(new Uint8Array(await crypto.subtle.sign('HMAC', key, msg)));
  }
  return hex(hmacSha256Fallback(enc.encode(keyText), msg));
}

/**
 * The headers of a guest-session request: the MAC covers `<body>.<timestamp>` (replay guard,
 * SPEC section 4) and X-Session carries the token.
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

/** Checks the fallback against RFC 4231 case 2 and, when present, WebCrypto. Returns a list of failures. */
export async function selfTest() {
  const failures = [];
  const rfc = hex(hmacSha256Fallback(enc.encode('Jefe'), enc.encode('what do ya want for nothing?')));
  if (rfc !== '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843') failures.push(`RFC 4231 case 2: ${rfc}`);
  if (hex(sha256(new Uint8Array(0))) !== 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855') failures.push('sha256 of ""');
  if (hasWebCrypto()) {
    for (const len of [0, 55, 56, 63, 64, 65, 200]) {
      const key = 'k'.repeat(len + 7);
      const msg = 'm'.repeat(len);
      const a = await hmacHex(key, msg);
      const b = await hmacHex(key, msg, { forceFallback: true });
      if (a !== b) failures.push(`length ${len}: WebCrypto ${a} vs fallback ${b}`);
    }
  }
  return failures;
}
