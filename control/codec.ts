// NG message framing: `COOKIE SP PAYLOAD`, the payload a bencoded dictionary or a JSON object.
// Decoding goes through the `bencode` package after our own iterative scan, which bounds depth
// and size (so hostile nesting cannot exhaust the stack) and finds message ends on TCP.
// Encoding is ours: `bencode` sorts dictionary keys, rtpengine replies keep insertion order
// (`sdp` before `result`), and we match rtpengine byte for byte.
import bencode from 'bencode';

export type NgValue = string | number | NgValue[] | { [k: string]: NgValue } | Buffer;
export type NgDict = { [k: string]: NgValue };

export class FramingError extends Error {
  constructor(readonly reason: string) { super(reason); }
}

export const MAX_DEPTH = 32;

/**
 * Scans one bencoded value starting at `start`. Returns the index just past it, or -1 when the
 * buffer ends first (more bytes may complete it). Throws FramingError on invalid bencode.
 */
export function scanBencode(buf: Uint8Array, start: number, maxDepth = MAX_DEPTH): number {
  let i = start;
  let depth = 0;
  const n = buf.length;
  do {
    if (i >= n) return -1;
    const c = buf[i]!;
    if (c === 0x64 /* d */ || c === 0x6c /* l */) {
      if (++depth > maxDepth) throw new FramingError('nesting too deep');
      i++;
    } else if (c === 0x65 /* e */) {
      if (depth === 0) throw new FramingError('unexpected end marker');
      depth--;
      i++;
    } else if (c === 0x69 /* i */) {
      let j = i + 1;
      if (j < n && buf[j] === 0x2d) j++;
      const digits = j;
      while (j < n && buf[j]! >= 0x30 && buf[j]! <= 0x39) j++;
      if (j >= n) return -1;
      if (buf[j] !== 0x65 || j === digits || j - digits > 18) throw new FramingError('bad integer');
      i = j + 1;
    } else if (c >= 0x30 && c <= 0x39) {
      let j = i, len = 0;
      while (j < n && buf[j]! >= 0x30 && buf[j]! <= 0x39) {
        len = len * 10 + (buf[j]! - 0x30);
        if (len > 16 * 1024 * 1024) throw new FramingError('string too long');
        j++;
      }
      if (j >= n) return -1;
      if (buf[j] !== 0x3a) throw new FramingError('bad string length');
      i = j + 1 + len;
      if (i > n) return -1;
    } else {
      throw new FramingError('invalid bencode');
    }
  } while (depth > 0);
  return i;
}

function toNg(v: unknown): NgValue {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map(toNg);
  if (typeof v === 'number' || typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object') {
    const o: NgDict = {};
    for (const [k, x] of Object.entries(v)) o[k] = toNg(x);
    return o;
  }
  return String(v);
}

/** Decodes a UDP payload's bencoded dictionary. Like rtpengine, tolerates missing closing `e`s and trailing bytes. */
export function decodeBencodeDict(payload: Buffer): NgDict {
  if (payload[0] !== 0x64) throw new FramingError('Invalid NG data format');
  let end: number;
  try {
    end = scanBencode(payload, 0);
  } catch (e) {
    throw new FramingError('Could not decode bencode dictionary');
  }
  let body = payload;
  if (end < 0) {
    // rtpengine accepts a dictionary whose closing markers are missing: close whatever is open.
    const closed = closeOpen(payload);
    if (closed === null) throw new FramingError('Could not decode bencode dictionary');
    body = closed;
  } else {
    body = payload.subarray(0, end);
  }
  let v: unknown;
  try {
    v = bencode.decode(body);
  } catch {
    throw new FramingError('Could not decode bencode dictionary');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw new FramingError('Could not decode bencode dictionary');
  return toNg(v) as NgDict;
}

/** Appends the `e`s a truncated value lacks, if it was cut at a value boundary. */
function closeOpen(buf: Buffer): Buffer | null {
  for (let k = 1; k <= MAX_DEPTH; k++) {
    const candidate = Buffer.concat([buf, Buffer.alloc(k, 0x65)]);
    try {
      if (scanBencode(candidate, 0) === candidate.length) return candidate;
    } catch {
      return null;
    }
  }
  return null;
}

export function decodeJsonDict(payload: Buffer): NgDict {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new FramingError('Failed to parse JSON document');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new FramingError('Failed to parse JSON document');
  if (depthOf(v, 0) > MAX_DEPTH) throw new FramingError('Failed to parse JSON document');
  return jsonToNg(v) as NgDict;
}

function depthOf(v: unknown, d: number): number {
  if (d > MAX_DEPTH) return d;
  if (v && typeof v === 'object') {
    let m = d + 1;
    for (const x of Object.values(v)) m = Math.max(m, depthOf(x, d + 1));
    return m;
  }
  return d;
}

function jsonToNg(v: unknown): NgValue {
  if (Array.isArray(v)) return v.map(jsonToNg);
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null) return '';
  if (typeof v === 'object') {
    const o: NgDict = {};
    for (const [k, x] of Object.entries(v as object)) o[k] = jsonToNg(x);
    return o;
  }
  return String(v);
}

/** Bencode with keys in insertion order. */
export function encodeBencode(v: NgValue): Buffer {
  const parts: Buffer[] = [];
  const walk = (x: NgValue): void => {
    if (typeof x === 'number') parts.push(Buffer.from(`i${Math.trunc(x)}e`));
    else if (typeof x === 'string') { const b = Buffer.from(x, 'utf8'); parts.push(Buffer.from(`${b.length}:`), b); }
    else if (Buffer.isBuffer(x)) parts.push(Buffer.from(`${x.length}:`), x);
    else if (Array.isArray(x)) { parts.push(Buffer.from('l')); x.forEach(walk); parts.push(Buffer.from('e')); }
    else {
      parts.push(Buffer.from('d'));
      for (const [k, y] of Object.entries(x)) { walk(k); walk(y); }
      parts.push(Buffer.from('e'));
    }
  };
  walk(v);
  return Buffer.concat(parts);
}

export function encodeJson(v: NgValue): Buffer {
  return Buffer.from(JSON.stringify(v, (_k, x) => (x && x.type === 'Buffer' && Array.isArray(x.data) ? Buffer.from(x.data).toString('utf8') : x)));
}

export interface Framed { cookie: Buffer; payload: Buffer }

/** Splits `COOKIE SP PAYLOAD`; null when there is no cookie (such datagrams get no reply). */
export function splitCookie(msg: Buffer): Framed | null {
  const sp = msg.indexOf(0x20);
  if (sp <= 0) return null;
  return { cookie: msg.subarray(0, sp), payload: msg.subarray(sp + 1) };
}
