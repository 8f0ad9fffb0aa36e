// SDES key exchange in SDP (RFC 4568): parse and format a=crypto values, generate keys, build
// rtpengine 10.5's offer list and pick the answer. Plain data in, plain data out; the suite
// table and SrtpPolicy come from media/srtp (session → media is the allowed direction).
import { randomBytes } from 'node:crypto';
import { SRTP_SUITES, srtpSuite, type SrtpSuite } from '../../media/srtp/suites.js';
import type { SrtpPolicy } from '../../media/srtp/context.js';

export interface SdesKey {
  key: Buffer;
  salt: Buffer;
  /** As written, e.g. "2^31" or "1066" (RFC 4568 §6.1); we never expire keys ourselves. */
  lifetime?: string;
  mki?: { value: number; length: number };
}

export interface SdesCrypto {
  tag: number;
  suite: SrtpSuite;
  keys: SdesKey[];
  /** Session parameters as written, e.g. "UNENCRYPTED_SRTCP", "KDR=0" (RFC 4568 §6.3). */
  sessionParams: string[];
}

export interface SdesFormat {
  /** Keep base64 '=' padding (rtpengine's SDES-pad); rtpengine strips it by default. */
  pad?: boolean;
  /** Append "|2^31" (rtpengine's SDES-lifetime). */
  lifetime?: boolean;
}

/** rtpengine 10.5's SDES offer order (ng-protocol.md §3.7): the suite table's order. */
export const SDES_OFFER_ORDER: readonly string[] = SRTP_SUITES.map((s) => s.name);

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const FLAGS = ['UNENCRYPTED_SRTP', 'UNENCRYPTED_SRTCP', 'UNAUTHENTICATED_SRTP'] as const;

/**
 * Parses the value of an a=crypto attribute (after "a=crypto:"), RFC 4568 §9.1:
 *   tag SP suite SP inline:<base64 key||salt>[|lifetime][|MKI:length][;inline:...] *(SP param)
 * Null when the line is malformed, the suite is not one we implement, or a key has the wrong
 * length for its suite (rtpengine ignores such lines too).
 */
export function parseCrypto(value: string): SdesCrypto | null {
  const parts = value.trim().split(/\s+/);
  if (parts.length < 3 || !/^\d{1,9}$/.test(parts[0]!)) return null;
  const suite = srtpSuite(parts[1]!);
  if (suite === undefined) return null;
  const keys: SdesKey[] = [];
  for (const param of parts[2]!.split(';')) {
    const k = parseKeyParam(param, suite);
    if (k === null) return null;
    keys.push(k);
  }
  return { tag: Number(parts[0]), suite, keys, sessionParams: parts.slice(3) };
}

function parseKeyParam(param: string, suite: SrtpSuite): SdesKey | null {
  if (!param.startsWith('inline:')) return null;
  const [b64, ...rest] = param.slice(7).split('|');
  if (!B64.test(b64!)) return null;
  const raw = Buffer.from(b64!, 'base64');
  if (raw.length !== suite.keyLength + suite.saltLength) return null;
  const k: SdesKey = { key: raw.subarray(0, suite.keyLength), salt: raw.subarray(suite.keyLength) };
  if (rest.length > 2) return null;
  for (const field of rest) {
    const mki = /^(\d+):(\d{1,3})$/.exec(field);
    if (mki) {
      const length = Number(mki[2]);
      if (k.mki || length < 1 || length > 128) return null;
      k.mki = { value: Number(mki[1]), length };
    } else if (/^(2\^)?\d+$/.test(field) && k.lifetime === undefined && k.mki === undefined) {
      k.lifetime = field; // the lifetime comes before the MKI when both are present
    } else {
      return null;
    }
  }
  return k;
}

/** Formats the value of an a=crypto attribute (without "a=crypto:"). */
export function formatCrypto(c: SdesCrypto, fmt: SdesFormat = {}): string {
  const keys = c.keys.map((k) => {
    let b64 = Buffer.concat([k.key, k.salt]).toString('base64');
    if (!fmt.pad) b64 = b64.replace(/=+$/, '');
    const life = fmt.lifetime ? '|2^31' : k.lifetime !== undefined ? `|${k.lifetime}` : '';
    const mki = k.mki ? `|${k.mki.value}:${k.mki.length}` : '';
    return `inline:${b64}${life}${mki}`;
  });
  return [String(c.tag), c.suite.name, keys.join(';'), ...c.sessionParams].join(' ');
}

/** A fresh random master key and salt for `suite`. */
export function generateCrypto(tag: number, suite: SrtpSuite, sessionParams: string[] = []): SdesCrypto {
  const raw = randomBytes(suite.keyLength + suite.saltLength);
  return { tag, suite, keys: [{ key: raw.subarray(0, suite.keyLength), salt: raw.subarray(suite.keyLength) }], sessionParams };
}

export interface SdesChoice {
  /** Suites to leave out (rtpengine SDES-no-<suite>). */
  no?: readonly string[];
  /** If non-empty, only these suites (SDES-only-<suite>; note 10.5 itself warns and ignores it). */
  only?: readonly string[];
}

function allowed(name: string, choice: SdesChoice): boolean {
  if (choice.no?.includes(name)) return false;
  return !choice.only?.length || choice.only.includes(name);
}

/** Our offer: one fresh key per allowed suite, in rtpengine's order, tags from 1. */
export function sdesOffer(choice: SdesChoice = {}, sessionParams: string[] = []): SdesCrypto[] {
  return SRTP_SUITES.filter((s) => allowed(s.name, choice)).map((s, i) => generateCrypto(i + 1, s, [...sessionParams]));
}

/**
 * Answer to an SDES offer (RFC 4568 §7.1.2): the first offered line we implement and allow,
 * answered with the same tag and suite, our own fresh key, and the offer's
 * UNENCRYPTED_ / UNAUTHENTICATED_ parameters echoed (they must match in both directions).
 * Lines with a non-zero KDR or with MKIs are skipped: the SRTP code does neither.
 */
export function sdesAnswer(offered: readonly SdesCrypto[], choice: SdesChoice = {}): { offer: SdesCrypto; answer: SdesCrypto } | null {
  for (const o of offered) {
    if (!allowed(o.suite.name, choice)) continue;
    if (o.keys.length !== 1 || o.keys[0]!.mki) continue;
    if (o.sessionParams.some((p) => /^KDR=/.test(p) && p !== 'KDR=0')) continue;
    const echoed = o.sessionParams.filter((p) => (FLAGS as readonly string[]).includes(p));
    return { offer: o, answer: generateCrypto(o.tag, o.suite, echoed) };
  }
  return null;
}

/** The SRTP switches a negotiated crypto line asks for (RFC 4568 §6.3.2–6.3.4). */
export function sdesPolicy(c: SdesCrypto): SrtpPolicy {
  return {
    encryptRtp: !c.sessionParams.includes('UNENCRYPTED_SRTP'),
    encryptRtcp: !c.sessionParams.includes('UNENCRYPTED_SRTCP'),
    authRtp: !c.sessionParams.includes('UNAUTHENTICATED_SRTP'),
  };
}
