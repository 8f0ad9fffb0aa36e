// NG message framing: `COOKIE SP PAYLOAD`, the payload a bencoded dictionary or a JSON object.
// Bencode is scanned and decoded here, not by a library: we must bound depth and sizes (hostile
// nesting must not exhaust the stack), find message ends on TCP, reproduce rtpengine 10.5's
// tolerance (missing closing `e`s, trailing bytes, first duplicate key wins), and encode replies
// with keys in insertion order (`sdp` before `result`), which a sorting encoder cannot.
// Imports nothing of ours.

export type NgValue = string | number | NgValue[] | { [k: string]: NgValue } | Buffer;
export type NgDict = { [k: string]: NgValue };

export class FramingError extends Error {
  constructor(readonly reason: string) { super(reason); }
}

/** Containers nested deeper than this are refused (rtpengine has no limit; we keep the stack safe). */
export const MAX_DEPTH = 64;
/** No single string may claim more than this (UDP datagrams are at most 64 KiB anyway). */
export const MAX_STRING = 16 * 1024 * 1024;
/** 20 digits: rtpengine accepts (and saturates) values past int64; we keep them as doubles. */
const MAX_INT_DIGITS = 20;

const E = 0x65, I = 0x69, L = 0x6c, D = 0x64, COLON = 0x3a, MINUS = 0x2d;
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

// What an open container expects next. A dictionary alternates key and value.
const LIST = 0, DICT_KEY = 1, DICT_VALUE = 2;

export interface ScanResult {
  /** Index just past the value, or -1 when the buffer ends before the value does. */
  end: number;
  /**
   * When `end` is -1: true if the buffer stops where a closing `e` would be legal (between list
   * items, or before a dictionary key), so closing the open containers yields a valid value.
   */
  closable: boolean;
}

/** The value of the ASCII digits buf[from, to) (a string length: at most 9 digits, scan checked). */
function decimal(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (buf[i]! - 0x30);
  return n;
}

/** Reads the digits of a length or integer at `i`; returns the index of the first non-digit. */
function digitsEnd(buf: Uint8Array, i: number): number {
  while (i < buf.length && isDigit(buf[i])) i++;
  return i;
}

/**
 * Scans one bencoded value at `start` without building it. Iterative, so depth costs no stack.
 * Throws FramingError for bytes that can never become valid bencode.
 */
export function scan(buf: Uint8Array, start: number, maxDepth = MAX_DEPTH): ScanResult {
  const stack: number[] = [];
  const n = buf.length;
  let i = start;
  for (;;) {
    if (i >= n) {
      const top = stack[stack.length - 1];
      return { end: -1, closable: top === LIST || top === DICT_KEY };
    }
    const c = buf[i]!;
    const top = stack[stack.length - 1];
    if (c === E) {
      if (top === undefined) throw new FramingError('unexpected end marker');
      if (top === DICT_VALUE) throw new FramingError('dictionary key without value');
      stack.pop();
      i++;
    } else if (top === DICT_KEY && !isDigit(c)) {
      throw new FramingError('dictionary key is not a string');
    } else if (c === D || c === L) {
      if (stack.length >= maxDepth) throw new FramingError('nesting too deep');
      stack.push(c === D ? DICT_KEY : LIST);
      i++;
      continue; // the container is complete only at its `e`
    } else if (c === I) {
      let j = i + 1;
      if (buf[j] === MINUS) j++;
      const k = digitsEnd(buf, j);
      if (k >= n) return { end: -1, closable: false };
      if (buf[k] !== E || k === j || k - j > MAX_INT_DIGITS || (buf[j] === 0x30 && k - j > 1)) throw new FramingError('bad integer');
      i = k + 1;
    } else if (isDigit(c)) {
      const k = digitsEnd(buf, i);
      if (k >= n) return { end: -1, closable: false };
      if (buf[k] !== COLON || (c === 0x30 && k - i > 1) || k - i > 9) throw new FramingError('bad string length');
      const len = decimal(buf, i, k);
      if (len > MAX_STRING) throw new FramingError('string too long');
      i = k + 1 + len;
      if (i > n) return { end: -1, closable: false };
    } else {
      throw new FramingError('invalid bencode');
    }
    // One value (scalar, or a container just closed) is complete.
    if (stack.length === 0) return { end: i, closable: false };
    const t = stack.length - 1;
    if (stack[t] !== LIST) stack[t] = stack[t] === DICT_KEY ? DICT_VALUE : DICT_KEY;
  }
}

/** End of one complete bencoded value at `start`, or -1 if more bytes are needed (TCP framing). */
export function scanBencode(buf: Uint8Array, start: number, maxDepth = MAX_DEPTH): number {
  return scan(buf, start, maxDepth).end;
}

/** Where `build` is in the buffer it builds from (build is synchronous and not re-entered). */
let at = 0;

/**
 * Builds the value at `at` of a buffer `scan` has accepted; the end of the buffer closes any
 * container still open. Recursion is bounded by the depth `scan` allowed.
 */
function build(buf: Buffer): NgValue {
  const c = buf[at]!;
  if (c === I) {
    let end = at + 1;
    while (buf[end] !== E) end++;
    const v = Number(buf.toString('latin1', at + 1, end));
    at = end + 1;
    return v;
  }
  if (c === L) {
    at++;
    const out: NgValue[] = [];
    while (at < buf.length && buf[at] !== E) out.push(build(buf));
    at++;
    return out;
  }
  if (c === D) {
    at++;
    // Null prototype: a key such as `__proto__` is then just a key.
    const out = Object.create(null) as NgDict;
    while (at < buf.length && buf[at] !== E) {
      // A key straight to its string (no Buffer for it): keys are strings, as `scan` checked.
      const len = lengthPrefix(buf);
      const k = keyString(buf, at, at + len);
      at += len;
      const v = build(buf);
      if (!(k in out)) out[k] = v; // rtpengine keeps the first of duplicate keys
    }
    at++;
    return out;
  }
  const len = lengthPrefix(buf);
  const from = at;
  at = from + len;
  return buf.subarray(from, at);
}

/**
 * Dictionary keys seen before, by a hash of their bytes. A request's keys are a few dozen
 * names used over and over; a fresh string per key (utf8Slice, a call into C++) also had to be
 * looked up in V8's string table at every property store. Only short ASCII keys are kept, at
 * most KEY_CACHE_MAX (a peer's made-up keys just stop being added).
 */
const keyCache = new Map<number, string>();
const KEY_CACHE_MAX = 1024, KEY_MAX = 32;

function keyString(buf: Buffer, from: number, to: number): string {
  const n = to - from;
  if (n <= KEY_MAX) {
    // FNV-1a over the bytes; any non-ASCII byte sends the key the slow way.
    let h = 0x811c9dc5;
    let ascii = true;
    for (let i = from; i < to; i++) {
      const c = buf[i]!;
      if (c > 0x7f) { ascii = false; break; }
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (ascii) {
      const hit = keyCache.get(h);
      if (hit !== undefined && hit.length === n) {
        let same = true;
        for (let i = 0; i < n; i++) if (hit.charCodeAt(i) !== buf[from + i]) { same = false; break; }
        if (same) return hit;
      }
      const k = (buf as unknown as { latin1Slice(from: number, to: number): string }).latin1Slice(from, to);
      if (hit === undefined && keyCache.size < KEY_CACHE_MAX) keyCache.set(h, k);
      return k;
    }
  }
  return (buf as unknown as { utf8Slice(from: number, to: number): string }).utf8Slice(from, to);
}

/**
 * Reads the `LEN:` of a string at `at` (digits `scan` checked) and leaves `at` on its first
 * byte. A JS loop over at most ten bytes: Buffer#indexOf is a call into C++ (~100 ns), two per
 * key and string value, ~15 % of a decode.
 */
function lengthPrefix(buf: Buffer): number {
  let i = at, n = 0;
  for (let c = buf[i]!; c !== COLON; c = buf[++i]!) n = n * 10 + (c - 0x30);
  at = i + 1;
  return n;
}

/**
 * Decodes a payload's bencoded dictionary as rtpengine 10.5 does: bytes after the dictionary are
 * ignored, and a dictionary cut off where a closing `e` could stand is closed (`d7:command4:ping`).
 * Strings come out as Buffers (SDP and tags are bytes), keys as UTF-8 strings.
 */
export function decodeBencodeDict(payload: Buffer): NgDict {
  if (payload[0] !== D) throw new FramingError('Invalid NG data format');
  let r: ScanResult;
  try {
    r = scan(payload, 0);
  } catch {
    throw new FramingError('Could not decode bencode dictionary');
  }
  if (r.end < 0 && !r.closable) throw new FramingError('Could not decode bencode dictionary');
  at = 0;
  return build(r.end < 0 ? payload : payload.subarray(0, r.end)) as NgDict;
}

export function decodeJsonDict(payload: Buffer): NgDict {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new FramingError('Failed to parse JSON document');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new FramingError('Failed to parse JSON document');
  if (depthOver(v, MAX_DEPTH)) throw new FramingError('Failed to parse JSON document');
  return fromJson(v) as NgDict;
}

/** True if `v` nests containers more than `limit` deep. Stops descending at the limit. */
function depthOver(v: unknown, limit: number): boolean {
  if (!v || typeof v !== 'object') return false;
  if (limit === 0) return true;
  for (const x of Object.values(v)) if (depthOver(x, limit - 1)) return true;
  return false;
}

/**
 * JSON → the bencode model. rtpengine converts JSON to bencode and refuses what bencode cannot
 * carry (null, fractions) with its bencode error; booleans it accepts.
 */
function fromJson(v: unknown): NgValue {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new FramingError('Could not decode bencode dictionary');
    return v;
  }
  if (Array.isArray(v)) return v.map(fromJson);
  if (v && typeof v === 'object') {
    const o = Object.create(null) as NgDict;
    for (const [k, x] of Object.entries(v)) o[k] = fromJson(x);
    return o;
  }
  throw new FramingError('Could not decode bencode dictionary');
}

/**
 * Bencode with dictionary keys in insertion order (rtpengine's reply order), strings as UTF-8;
 * `cookie` (a reply's) goes first, with its space. Written byte by byte into one scratch buffer
 * and copied out once. Measured on the busy 2-core VM for ngload's delete reply (1.9 kB, ~150
 * tokens): one Buffer per token and Buffer.concat 103 µs; one latin1 string built by `+=` and
 * converted once 14 µs; this 9 µs (offer reply 0.65 -> 0.5 µs). The writers take the position
 * and return the next one, and the scratch buffer is a constant of each encoding (one that does
 * not fit starts again in a buffer twice the size): a module variable for the position was a
 * load and a store per byte, ~20 % of the delete reply's encoding (5.5-6.0 -> 4.4-4.9 µs).
 */
export function encodeBencode(v: NgValue, cookie?: Buffer): Buffer {
  for (;;) {
    const b = scratch;
    let p = 0;
    try {
      if (cookie !== undefined) {
        if (cookie.length + 1 > b.length) throw OVERFLOW;
        cookie.copy(b, 0);
        p = cookie.length;
        b[p++] = 0x20;
      }
      p = writeValue(b, p, v);
    } catch (e) {
      if (e !== OVERFLOW) throw e;
      scratch = Buffer.allocUnsafe(b.length * 2);
      continue;
    }
    const out = Buffer.allocUnsafe(p);
    b.copy(out, 0, 0, p);
    // One huge reply (a query of a call with thousands of labels) must not keep its scratch for ever.
    if (scratch.length > MAX_SCRATCH) scratch = Buffer.allocUnsafe(SCRATCH);
    return out;
  }
}

const ASCII = /^[\x00-\x7f]*$/;

/** Whether a string is all ASCII (its UTF-8 and Latin-1 bytes are then the same). */
export function isAscii(s: string): boolean {
  return ASCII.test(s);
}

const SCRATCH = 64 * 1024, MAX_SCRATCH = 1024 * 1024;
let scratch = Buffer.allocUnsafe(SCRATCH);
/** Thrown by a writer that would pass the end of the scratch buffer (encodeBencode starts again in a bigger one). */
const OVERFLOW = new Error('bencode scratch full');

/** ASCII digits of a non-negative integer or a short ASCII string, one byte each (room made). */
function writeAscii(b: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
  return p;
}

/** Decimal digits of a non-negative integer (room made: up to 16 bytes), as String(n) writes them. */
function writeInt(b: Buffer, p: number, n: number): number {
  if (n < 10) { b[p] = 0x30 + n; return p + 1; }
  if (n > Number.MAX_SAFE_INTEGER) return writeAscii(b, p, String(n));
  if (n <= 0x7fffffff) {
    // Int32 (lengths, ports, most counters, Unix times until 2038): the digits counted by
    // comparison and cut off by integer division, not float division and Math.floor: the delete
    // reply (41 numbers, half of them times) encoded in 5.7 instead of 6.4 us.
    let v = n | 0;
    const digits = v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5 : v < 1000000 ? 6
      : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
    const end = p + digits;
    let q = end;
    while (v >= 10) {
      const d = (v / 10) | 0;
      b[--q] = 0x30 + (v - d * 10);
      v = d;
    }
    b[--q] = 0x30 + v;
    return end;
  }
  let digits = 1;
  for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
  const end = p + digits;
  let q = end, t = n;
  while (t >= 10) {
    const d = Math.floor(t / 10);
    b[--q] = 0x30 + (t - d * 10);
    t = d;
  }
  b[--q] = 0x30 + t;
  return end;
}

function writeString(b: Buffer, p: number, x: string): number {
  const n = x.length;
  if (p + n + 12 > b.length) throw OVERFLOW;
  if (n > 64) {
    if (!ASCII.test(x)) return writeBytes(b, p, Buffer.from(x, 'utf8'));
    p = writeInt(b, p, n);
    b[p++] = COLON;
    return p + b.write(x, p, 'latin1');
  }
  // Short strings (keys, tags, flags): copied while checked, started again as UTF-8 if one is not ASCII.
  const start = p;
  p = writeInt(b, p, n);
  b[p++] = COLON;
  for (let i = 0; i < n; i++) {
    const c = x.charCodeAt(i);
    if (c > 0x7f) return writeBytes(b, start, Buffer.from(x, 'utf8'));
    b[p++] = c;
  }
  return p;
}

function writeBytes(b: Buffer, p: number, x: Buffer): number {
  if (p + x.length + 12 > b.length) throw OVERFLOW;
  p = writeInt(b, p, x.length);
  b[p++] = COLON;
  x.copy(b, p);
  return p + x.length;
}

function writeValue(b: Buffer, p: number, x: NgValue): number {
  if (typeof x === 'number') {
    // String(n) as the string encoder wrote it (so -0 is "0", and 1e21 is "1e+21" as before);
    // safe non-negative integers (every counter and time of a reply) without the string.
    if (x >= 0 && x <= Number.MAX_SAFE_INTEGER) {
      if (p + 20 > b.length) throw OVERFLOW;
      b[p++] = I;
      p = writeInt(b, p, Math.trunc(x));
      b[p++] = E;
      return p;
    }
    const digits = String(Number.isFinite(x) ? Math.trunc(x) : 0);
    if (p + digits.length + 2 > b.length) throw OVERFLOW;
    b[p++] = I;
    p = writeAscii(b, p, digits);
    b[p++] = E;
    return p;
  }
  if (typeof x === 'string') return writeString(b, p, x);
  // isView first: Buffer.isBuffer is an instanceof (a prototype walk) for every dict and list.
  if (ArrayBuffer.isView(x) && Buffer.isBuffer(x)) return writeBytes(b, p, x);
  if (p + 2 > b.length) throw OVERFLOW;
  if (Array.isArray(x)) {
    b[p++] = L;
    for (let i = 0; i < x.length; i++) p = writeValue(b, p, x[i]!);
  } else {
    b[p++] = D;
    for (const k in x) { p = writeString(b, p, k); p = writeValue(b, p, x[k]!); }
  }
  if (p + 1 > b.length) throw OVERFLOW;
  b[p++] = E;
  return p;
}

/** Compact JSON, as rtpengine answers a JSON request; byte strings become UTF-8 text. */
export function encodeJson(v: NgValue): Buffer {
  const plain = (x: NgValue): unknown => {
    if (Buffer.isBuffer(x)) return x.toString('utf8');
    if (Array.isArray(x)) return x.map(plain);
    if (x && typeof x === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, y] of Object.entries(x)) Object.defineProperty(o, k, { value: plain(y), enumerable: true });
      return o;
    }
    return x;
  };
  return Buffer.from(JSON.stringify(plain(v)));
}

export interface Framed { cookie: Buffer; payload: Buffer }

/** Splits `COOKIE SP PAYLOAD`; null when there is no cookie (such datagrams get no reply). */
export function splitCookie(msg: Buffer): Framed | null {
  const sp = msg.indexOf(0x20);
  if (sp <= 0) return null;
  return { cookie: msg.subarray(0, sp), payload: msg.subarray(sp + 1) };
}

/**
 * End of one JSON object at `start` (strings and escapes respected), or -1 if incomplete. Only
 * finds the boundary on TCP; `decodeJsonDict` judges the content.
 */
export function scanJson(buf: Uint8Array, start: number, maxDepth = MAX_DEPTH): number {
  let depth = 0, inStr = false;
  for (let i = start; i < buf.length; i++) {
    const c = buf[i]!;
    if (inStr) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inStr = false;
    } else if (c === 0x22) inStr = true;
    else if (c === 0x7b || c === 0x5b) { if (++depth > maxDepth) throw new FramingError('nesting too deep'); }
    else if (c === 0x7d || c === 0x5d) { if (--depth <= 0) return i + 1; }
  }
  return -1;
}
