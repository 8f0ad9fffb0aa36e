// STUN messages for ICE connectivity checks (RFC 5389/8489, ICE attributes from RFC 8445 §16.1):
// parse, verify (short-term MESSAGE-INTEGRITY, FINGERPRINT) and build. Pure functions over
// Buffers; nothing here throws on packet input (malformed → null). Imports only node:crypto.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const MAGIC_COOKIE = 0x2112a442;
const HEADER = 20;

/** Message types (method | class bits, RFC 8489 §5): only the Binding method is used by ICE. */
export const STUN_TYPE = {
  bindingRequest: 0x0001,
  bindingIndication: 0x0011,
  bindingSuccess: 0x0101,
  bindingError: 0x0111,
} as const;

export const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
} as const;

const KNOWN = new Set<number>(Object.values(ATTR));

export interface StunAddress { family: 4 | 6; address: string; port: number }

export interface StunMessage {
  type: number;
  /** 12-byte transaction id (a view into the parsed buffer). */
  transactionId: Buffer;
  /** The message as received (a view; length from the header). */
  raw: Buffer;
  /** First occurrence of each attribute: value offset and length in `raw`. */
  attrs: Map<number, { offset: number; length: number }>;
  /** Comprehension-required attributes we do not know (answer a request with 420, RFC 8489 §7.3.1). */
  unknownRequired: number[];
  /** Offset of the MESSAGE-INTEGRITY / FINGERPRINT attribute headers, or -1. */
  integrityAt: number;
  fingerprintAt: number;
  username?: string;
  priority?: number;
  useCandidate: boolean;
  iceControlling?: bigint;
  iceControlled?: bigint;
  errorCode?: { code: number; reason: string };
  xorMappedAddress?: StunAddress;
  mappedAddress?: StunAddress;
}

/**
 * RFC 7983 demultiplexing: first byte 0..3 is STUN; plus the fixed header checks of RFC 8489
 * §5 (magic cookie, length a multiple of 4 that fits the datagram).
 */
export function isStun(buf: Buffer): boolean {
  if (buf.length < HEADER || buf[0]! > 3) return false;
  const len = buf.readUInt16BE(2);
  return (len & 3) === 0 && HEADER + len <= buf.length && buf.readUInt32BE(4) === MAGIC_COOKIE;
}

/** Parses a STUN message, or null for anything malformed. Does not check integrity. */
export function parseStun(buf: Buffer): StunMessage | null {
  if (!isStun(buf)) return null;
  const raw = buf.subarray(0, HEADER + buf.readUInt16BE(2));
  const msg: StunMessage = {
    type: raw.readUInt16BE(0), transactionId: raw.subarray(8, 20), raw,
    attrs: new Map(), unknownRequired: [], integrityAt: -1, fingerprintAt: -1, useCandidate: false,
  };
  let at = HEADER;
  while (at < raw.length) {
    if (at + 4 > raw.length) return null;
    const type = raw.readUInt16BE(at);
    const length = raw.readUInt16BE(at + 2);
    const offset = at + 4;
    if (offset + length > raw.length) return null;
    if (msg.fingerprintAt >= 0) return null; // FINGERPRINT must be last (RFC 8489 §14.7)
    // RFC 8489 §14.5: after MESSAGE-INTEGRITY only FINGERPRINT counts; the rest is ignored.
    if (msg.integrityAt < 0 || type === ATTR.FINGERPRINT) {
      if (!readAttribute(msg, type, offset, length, at)) return null;
    }
    at = offset + ((length + 3) & ~3); // values are padded to 4 bytes; padding content is ignored
  }
  return msg;
}

function readAttribute(msg: StunMessage, type: number, offset: number, length: number, headerAt: number): boolean {
  const raw = msg.raw;
  if (!msg.attrs.has(type)) msg.attrs.set(type, { offset, length });
  else return true; // only the first of a repeated attribute is significant
  switch (type) {
    case ATTR.MESSAGE_INTEGRITY:
      if (length !== 20) return false;
      msg.integrityAt = headerAt;
      return true;
    case ATTR.FINGERPRINT:
      if (length !== 4) return false;
      msg.fingerprintAt = headerAt;
      return true;
    case ATTR.USERNAME:
      if (length > 513) return false;
      msg.username = raw.toString('utf8', offset, offset + length);
      return true;
    case ATTR.PRIORITY:
      if (length !== 4) return false;
      msg.priority = raw.readUInt32BE(offset);
      return true;
    case ATTR.USE_CANDIDATE:
      msg.useCandidate = true;
      return true;
    case ATTR.ICE_CONTROLLING:
    case ATTR.ICE_CONTROLLED: {
      if (length !== 8) return false;
      const v = raw.readBigUInt64BE(offset);
      if (type === ATTR.ICE_CONTROLLING) msg.iceControlling = v;
      else msg.iceControlled = v;
      return true;
    }
    case ATTR.ERROR_CODE: {
      if (length < 4) return false;
      const code = (raw[offset + 2]! & 7) * 100 + raw[offset + 3]!;
      msg.errorCode = { code, reason: raw.toString('utf8', offset + 4, offset + length) };
      return true;
    }
    case ATTR.XOR_MAPPED_ADDRESS:
    case ATTR.MAPPED_ADDRESS: {
      const a = readAddress(raw, offset, length, type === ATTR.XOR_MAPPED_ADDRESS ? raw.subarray(4, 20) : null);
      if (a === null) return false;
      if (type === ATTR.XOR_MAPPED_ADDRESS) msg.xorMappedAddress = a;
      else msg.mappedAddress = a;
      return true;
    }
    default:
      if (type < 0x8000 && !KNOWN.has(type)) msg.unknownRequired.push(type);
      return true;
  }
}

/** RFC 8489 §14.1–14.2: family, port, address; XOR'd with the cookie (+ transaction id for v6). */
function readAddress(raw: Buffer, offset: number, length: number, xor: Buffer | null): StunAddress | null {
  const family = raw[offset + 1];
  const size = family === 1 ? 4 : family === 2 ? 16 : 0;
  if (size === 0 || length !== 4 + size) return null;
  const bytes = Buffer.from(raw.subarray(offset + 4, offset + 4 + size));
  let port = raw.readUInt16BE(offset + 2);
  if (xor !== null) {
    port ^= 0x2112;
    for (let i = 0; i < size; i++) bytes[i]! ^= xor[i]!;
  }
  return size === 4 ? { family: 4, address: bytes.join('.'), port } : { family: 6, address: formatIpv6(bytes), port };
}

/** Short-term credentials (RFC 8489 §9.1): the key is the password itself. */
export function checkIntegrity(msg: StunMessage, password: string | Buffer): boolean {
  if (msg.integrityAt < 0) return false;
  const expected = integrity(msg.raw, msg.integrityAt, password);
  return timingSafeEqual(expected, msg.raw.subarray(msg.integrityAt + 4, msg.integrityAt + 24));
}

export function checkFingerprint(msg: StunMessage): boolean {
  if (msg.fingerprintAt < 0) return false;
  return (crc32(msg.raw, 0, msg.fingerprintAt) ^ 0x5354554e) >>> 0 === msg.raw.readUInt32BE(msg.fingerprintAt + 4);
}

/**
 * HMAC-SHA1 over the message up to the MESSAGE-INTEGRITY attribute, with the header length
 * set as if that attribute ended the message (RFC 8489 §14.5).
 */
function integrity(buf: Buffer, miAt: number, password: string | Buffer): Buffer {
  const header = Buffer.from(buf.subarray(0, HEADER));
  header.writeUInt16BE(miAt + 24 - HEADER, 2);
  return createHmac('sha1', password).update(header).update(buf.subarray(HEADER, miAt)).digest();
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 as in ISO 3309 / ITU-T V.42, which FINGERPRINT uses (RFC 8489 §14.7). */
export function crc32(buf: Buffer, start = 0, end = buf.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

// ---- building -----------------------------------------------------------------------------

export type StunAttr = readonly [type: number, value: Buffer];

/**
 * Builds a message: attributes padded with zeros, then MESSAGE-INTEGRITY when a password is
 * given, then FINGERPRINT (ICE requires it, RFC 8445 §7.1.1).
 */
export function buildStun(type: number, transactionId: Buffer, attrs: readonly StunAttr[], password?: string | Buffer, fingerprint = true): Buffer {
  let size = HEADER;
  for (const [, v] of attrs) size += 4 + ((v.length + 3) & ~3);
  const miAt = size;
  if (password !== undefined) size += 24;
  const fpAt = size;
  if (fingerprint) size += 8;
  const out = Buffer.alloc(size);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(size - HEADER, 2);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(out, 8, 0, 12);
  let at = HEADER;
  for (const [t, v] of attrs) {
    out.writeUInt16BE(t, at);
    out.writeUInt16BE(v.length, at + 2);
    v.copy(out, at + 4);
    at += 4 + ((v.length + 3) & ~3);
  }
  if (password !== undefined) {
    out.writeUInt16BE(ATTR.MESSAGE_INTEGRITY, miAt);
    out.writeUInt16BE(20, miAt + 2);
    integrity(out, miAt, password).copy(out, miAt + 4);
  }
  if (fingerprint) {
    out.writeUInt16BE(ATTR.FINGERPRINT, fpAt);
    out.writeUInt16BE(4, fpAt + 2);
    out.writeUInt32BE((crc32(out, 0, fpAt) ^ 0x5354554e) >>> 0, fpAt + 4);
  }
  return out;
}

/** XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS with xor=false) value; null for an unparsable address. */
export function addressValue(address: string, port: number, transactionId: Buffer, xor = true): Buffer | null {
  const bytes = address.includes(':') ? parseIpv6(address) : parseIpv4(address);
  if (bytes === null) return null;
  const v = Buffer.alloc(4 + bytes.length);
  v[1] = bytes.length === 4 ? 1 : 2;
  v.writeUInt16BE(xor ? port ^ 0x2112 : port, 2);
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4, 0, 12);
  for (let i = 0; i < bytes.length; i++) v[4 + i] = xor ? bytes[i]! ^ mask[i]! : bytes[i]!;
  return v;
}

/** RFC 8445 §7.3.1.4: success response to a check, signed with our (local) password. */
export function buildBindingSuccess(request: StunMessage, mappedAddr: string, mappedPort: number, password: string | Buffer): Buffer | null {
  const v = addressValue(mappedAddr, mappedPort, request.transactionId);
  if (v === null) return null;
  return buildStun(STUN_TYPE.bindingSuccess, request.transactionId, [[ATTR.XOR_MAPPED_ADDRESS, v]], password);
}

/**
 * Error response (RFC 8489 §14.8): 400 bad request, 401 unauthenticated (no password: we could
 * not check theirs), 420 unknown attribute (lists `request.unknownRequired`), 487 role conflict
 * (RFC 8445 §7.3.1.1, signed).
 */
export function buildBindingError(request: StunMessage, code: number, reason: string, password?: string | Buffer): Buffer {
  const text = Buffer.from(reason, 'utf8');
  const ec = Buffer.alloc(4 + text.length);
  ec[2] = Math.floor(code / 100) & 7;
  ec[3] = code % 100;
  text.copy(ec, 4);
  const attrs: StunAttr[] = [[ATTR.ERROR_CODE, ec]];
  if (code === 420 && request.unknownRequired.length > 0) {
    const u = Buffer.alloc(2 * request.unknownRequired.length);
    request.unknownRequired.forEach((t, i) => u.writeUInt16BE(t, 2 * i));
    attrs.push([ATTR.UNKNOWN_ATTRIBUTES, u]);
  }
  return buildStun(STUN_TYPE.bindingError, request.transactionId, attrs, password);
}

export interface BindingRequestOptions {
  /** "remoteUfrag:localUfrag" (RFC 8445 §7.2.2). */
  username: string;
  /** The remote agent's password (the key of the short-term credential). */
  password: string | Buffer;
  priority: number;
  controlling?: bigint;
  controlled?: bigint;
  useCandidate?: boolean;
  transactionId?: Buffer;
}

/** RFC 8445 §7.2.2 connectivity check. The transaction id is random unless given. */
export function buildBindingRequest(o: BindingRequestOptions): { transactionId: Buffer; message: Buffer } {
  const transactionId = o.transactionId ?? randomBytes(12); // RFC 8489 §6: uniformly random
  const prio = Buffer.alloc(4);
  prio.writeUInt32BE(o.priority >>> 0);
  const attrs: StunAttr[] = [[ATTR.USERNAME, Buffer.from(o.username, 'utf8')], [ATTR.PRIORITY, prio]];
  if (o.controlling !== undefined) attrs.push([ATTR.ICE_CONTROLLING, u64(o.controlling)]);
  if (o.controlled !== undefined) attrs.push([ATTR.ICE_CONTROLLED, u64(o.controlled)]);
  if (o.useCandidate) attrs.push([ATTR.USE_CANDIDATE, Buffer.alloc(0)]);
  return { transactionId, message: buildStun(STUN_TYPE.bindingRequest, transactionId, attrs, o.password) };
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, v));
  return b;
}

// ---- addresses ------------------------------------------------------------------------------

function parseIpv4(s: string): Buffer | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const b = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]!)) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    b[i] = n;
  }
  return b;
}

function parseIpv6(s: string): Buffer | null {
  const addr = s.replace(/^\[|\]$/g, '').replace(/%.*$/, ''); // brackets and zone id
  const halves = addr.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    const parts = h.split(':');
    for (const [i, p] of parts.entries()) {
      if (i === parts.length - 1 && p.includes('.')) { // embedded IPv4 (::ffff:1.2.3.4)
        const v4 = parseIpv4(p);
        if (v4 === null) return null;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(g, 2 * i));
  return b;
}

/** RFC 5952 text form: lower case, longest run of two or more zero groups as "::". */
function formatIpv6(b: Buffer): string {
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(2 * i));
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
