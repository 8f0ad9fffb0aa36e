// Per-socket packet transforms on the relay path: SRTP/SRTCP contexts built from a socket's plan
// (SDES keys; DTLS-SRTP keys arrive later from media/dtls), and RTCP feedback removal for a party
// that does not take AVPF feedback (RFC 4585 §6: RTPFB 205, PSFB 206). Synchronous, never throws on
// packet input, no logging. Imports only media/.
import { createSrtpContext, type SrtpContext } from './srtp/context.js';
import type { SocketCrypto, SrtpKeys } from './plane.js';

/** The SRTP state of one socket: `rx` decrypts what the party sends, `tx` encrypts towards it. */
export interface SrtpPair {
  rx: SrtpContext;
  tx: SrtpContext;
}

function context(k: SrtpKeys, policy: { encryptRtp?: boolean; encryptRtcp?: boolean; authRtp?: boolean }): SrtpContext | null {
  try {
    return createSrtpContext(k.suite, Buffer.from(k.key, 'base64'), Buffer.from(k.salt, 'base64'), policy);
  } catch {
    return null; // unknown suite or wrong key length: the plan is refused (no media), never a throw
  }
}

/**
 * SDES contexts from a plan, or null when the plan has no SDES keys. `invalid` is true when keys
 * were given but unusable (the socket then drops all media rather than sending it in clear).
 */
export function sdesPair(crypto: SocketCrypto | null | undefined): { pair: SrtpPair | null; invalid: boolean } {
  const sdes = crypto?.sdes;
  if (!sdes) return { pair: null, invalid: false };
  const policy = {
    encryptRtp: sdes.unencryptedSrtp !== true,
    encryptRtcp: sdes.unencryptedSrtcp !== true,
    authRtp: sdes.unauthenticatedSrtp !== true,
  };
  const rx = context(sdes.rx, policy), tx = context(sdes.tx, policy);
  if (rx === null || tx === null) return { pair: null, invalid: true };
  return { pair: { rx, tx }, invalid: false };
}

/** Whether two plans name the same SDES keys (a repeated plan keeps contexts, ROC and replay state). */
export function sameSdes(a: SocketCrypto | null | undefined, b: SocketCrypto | null | undefined): boolean {
  const x = a?.sdes, y = b?.sdes;
  if (!x || !y) return !x && !y;
  const k = (s: SrtpKeys): string => `${s.suite} ${s.key} ${s.salt}`;
  return k(x.rx) === k(y.rx) && k(x.tx) === k(y.tx) && !!x.unencryptedSrtp === !!y.unencryptedSrtp
    && !!x.unencryptedSrtcp === !!y.unencryptedSrtcp && !!x.unauthenticatedSrtp === !!y.unauthenticatedSrtp;
}

/** SRTP packets dropped by a receive context: authentication, replay, malformed. */
export function rxFailures(ctx: SrtpContext): number {
  const f = ctx.failures;
  return f.auth + f.replay + f.malformed;
}

/** RTP/RTCP demux on one socket (RFC 5761 §4): RTCP packet types 192..223 share RTP's PT byte. */
export function isRtcpPacket(buf: Buffer): boolean {
  const b1 = buf[1]!;
  return b1 >= 192 && b1 <= 223;
}

export const RTCP_RTPFB = 205;
export const RTCP_PSFB = 206;

/**
 * Removes transport-layer and payload-specific feedback (NACK, TMMBR, transport-cc; PLI, SLI, FIR,
 * REMB, …) from a compound or reduced-size (RFC 5506) RTCP packet. Returns `buf` itself when there
 * is none, a new Buffer without them, or null when nothing is left (or the packet is malformed,
 * which a plain phone must not get either).
 */
export function stripFeedback(buf: Buffer): Buffer | null {
  let at = 0, feedback = 0, kept = 0;
  while (at + 4 <= buf.length) {
    const len = (buf.readUInt16BE(at + 2) + 1) * 4;
    if ((buf[at]! & 0xc0) !== 0x80 || at + len > buf.length) return null;
    const pt = buf[at + 1]!;
    if (pt === RTCP_RTPFB || pt === RTCP_PSFB) feedback++; else kept++;
    at += len;
  }
  if (at !== buf.length) return null;
  if (feedback === 0) return buf;
  if (kept === 0) return null;
  const out = Buffer.allocUnsafe(buf.length);
  let n = 0;
  at = 0;
  while (at < buf.length) {
    const len = (buf.readUInt16BE(at + 2) + 1) * 4;
    const pt = buf[at + 1]!;
    if (pt !== RTCP_RTPFB && pt !== RTCP_PSFB) { buf.copy(out, n, at, at + len); n += len; }
    at += len;
  }
  return out.subarray(0, n);
}
