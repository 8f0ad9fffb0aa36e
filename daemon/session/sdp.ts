// SDP as an ordered list of lines per section, so that a rewrite can keep every attribute it
// does not manage in its original place (rtpengine's output depends on that order). The values
// the session needs (connection, rtpmap, rtcp, direction …) are read with sdp-transform.
import sdpTransform from 'sdp-transform';
import { SessionError } from './errors.js';

export interface SdpLine { readonly type: string; readonly value: string }

export interface SdpMediaSection {
  /** Parsed `m=` line. */
  type: string;
  port: number;
  portCount: number | null;
  proto: string;
  fmts: string[];
  /** Every line after `m=`, in order. */
  lines: SdpLine[];
}

export interface SdpDoc {
  /** Every line before the first `m=`, in order. */
  session: SdpLine[];
  media: SdpMediaSection[];
}

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface Connection { family: 4 | 6; address: string }

export interface Codec {
  pt: number;
  /** `PCMU/8000`, `opus/48000/2` … as written in a=rtpmap, or the static default. */
  encoding: string | null;
}

/** What the session needs to know of one media section. */
export interface MediaInfo {
  index: number;
  type: string;
  proto: string;
  port: number;
  connection: Connection | null;
  /** Port and optional address of a=rtcp. */
  rtcp: { port: number; connection: Connection | null } | null;
  rtcpMux: boolean;
  direction: Direction | null;
  codecs: Codec[];
  hasIce: boolean;
  ptime: number | null;
}

export const STATIC_PAYLOAD_TYPES: Readonly<Record<number, string>> = {
  0: 'PCMU/8000', 3: 'GSM/8000', 4: 'G723/8000', 5: 'DVI4/8000', 6: 'DVI4/16000', 7: 'LPC/8000',
  8: 'PCMA/8000', 9: 'G722/8000', 10: 'L16/44100/2', 11: 'L16/44100', 12: 'QCELP/8000', 13: 'CN/8000',
  14: 'MPA/90000', 15: 'G728/8000', 16: 'DVI4/11025', 17: 'DVI4/22050', 18: 'G729/8000',
  25: 'CelB/90000', 26: 'JPEG/90000', 28: 'nv/90000', 31: 'H261/90000', 32: 'MPV/90000', 33: 'MP2T/90000',
  34: 'H263/90000',
};

export const MAX_SDP_BYTES = 64 * 1024;
const MAX_MEDIA = 64;

export function attrName(l: SdpLine): string {
  const i = l.value.indexOf(':');
  return i < 0 ? l.value : l.value.slice(0, i);
}

export function attrValue(l: SdpLine): string {
  const i = l.value.indexOf(':');
  return i < 0 ? '' : l.value.slice(i + 1);
}

/**
 * `l.type === 'a' && attrName(l) === name` without slicing the name out: the session code asks
 * this of every line of a section several times per command.
 */
export function isAttr(l: SdpLine, name: string): boolean {
  if (l.type !== 'a') return false;
  const v = l.value;
  if (!v.startsWith(name)) return false;
  return v.length === name.length || v.charCodeAt(name.length) === 0x3a;
}

/** Splits an SDP body into the ordered model. Throws SessionError BAD_SDP or NO_MEDIA. */
export function parseSdp(text: string): SdpDoc {
  if (text.length > MAX_SDP_BYTES) throw new SessionError('BAD_SDP', 'SDP too large');
  // split('\n'), one CR taken off each line that a LF ended, is split(/\r?\n/) without a regex;
  // the CR is left out of the value's slice rather than sliced off first (one copy per line).
  const rawLines = text.split('\n');
  const last = rawLines.length - 1;
  const lineEnd = (i: number): number => {
    const r = rawLines[i]!;
    return i < last && r.charCodeAt(r.length - 1) === 0x0d ? r.length - 1 : r.length;
  };
  let count = rawLines.length;
  while (count > 0 && lineEnd(count - 1) === 0) count--;
  if (count === 0 || lineEnd(0) !== 3 || !rawLines[0]!.startsWith('v=0')) throw new SessionError('BAD_SDP', 'SDP does not start with v=0');
  const doc: SdpDoc = { session: [], media: [] };
  let lines = doc.session;
  for (let i = 0; i < count; i++) {
    const raw = rawLines[i]!;
    const end = lineEnd(i);
    const c0 = raw.charCodeAt(0);
    if (end < 2 || raw.charCodeAt(1) !== 0x3d || c0 < 0x61 || c0 > 0x7a) {
      throw new SessionError('BAD_SDP', 'malformed SDP line');
    }
    const line: SdpLine = { type: raw[0]!, value: raw.slice(2, end) };
    if (c0 === 0x6d) {
      const m = /^(\S+) (\d+)(?:\/(\d+))? (\S+)(?: (.*))?$/.exec(line.value);
      if (!m) throw new SessionError('BAD_SDP', 'malformed m= line');
      const port = Number(m[2]);
      if (port > 65535) throw new SessionError('BAD_SDP', 'bad port in m= line');
      if (doc.media.length >= MAX_MEDIA) throw new SessionError('BAD_SDP', 'too many media sections');
      const fmts: string[] = [];
      if (m[5] !== undefined) for (const f of m[5].split(' ')) if (f !== '') fmts.push(f);
      const section: SdpMediaSection = { type: m[1]!, port, portCount: m[3] ? Number(m[3]) : null, proto: m[4]!, fmts, lines: [] };
      doc.media.push(section);
      lines = section.lines;
    } else {
      lines.push(line);
    }
  }
  if (!doc.media.length) throw new SessionError('NO_MEDIA', 'SDP has no media');
  return doc;
}

function parseConnection(value: string): Connection | null {
  const m = /^IN IP([46]) (\S+)/.exec(value);
  if (!m) return null;
  return { family: m[1] === '6' ? 6 : 4, address: m[2]!.split('/')[0]! };
}

/** The values the session uses, read through sdp-transform so attribute grammar stays its job. */
export function mediaInfo(doc: SdpDoc, text: string): MediaInfo[] {
  const parsed = /\r(?!\n)/.test(text) ? sdpTransform.parse(text) : null;
  let sessionConn: SdpLine | undefined;
  let sessionDir: Direction | undefined;
  for (const l of doc.session) {
    if (sessionConn === undefined && l.type === 'c') sessionConn = l;
    if (sessionDir === undefined && l.type === 'a') sessionDir = directionOf(l.value);
  }
  const out: MediaInfo[] = [];
  for (let index = 0; index < doc.media.length; index++) {
    const m = doc.media[index]!;
    const p = parsed !== null ? parsed.media[index] : readAttributes(m);
    let connLine: SdpLine | undefined, dirLine: Direction | undefined;
    let rtcpMux = false, hasIce = false;
    for (const l of m.lines) {
      if (l.type === 'c') { connLine ??= l; continue; }
      if (l.type !== 'a') continue;
      const v = l.value;
      if (dirLine === undefined && (dirLine = directionOf(v)) !== undefined) continue;
      if (v === 'rtcp-mux') rtcpMux = true;
      else if (v.startsWith('candidate:') || v.startsWith('ice-ufrag:')) hasIce = true;
    }
    connLine ??= sessionConn;
    const connection = connLine ? parseConnection(connLine.value) : null;
    if (!connection) throw new SessionError('INCOMPLETE_SDP', 'media without connection address');
    const rtpmaps = new Map<number, string>();
    for (const r of p?.rtp ?? []) {
      rtpmaps.set(r.payload, `${r.codec}/${r.rate ?? ''}${r.encoding ? '/' + r.encoding : ''}`);
    }
    const codecs: Codec[] = [];
    for (const f of m.fmts) {
      const pt = Number(f);
      codecs.push({ pt, encoding: rtpmaps.get(pt) ?? STATIC_PAYLOAD_TYPES[pt] ?? null });
    }
    const rtcp = p?.rtcp
      ? {
        port: p.rtcp.port,
        connection: p.rtcp.address ? { family: (p.rtcp.ipVer === 6 ? 6 : 4) as 4 | 6, address: p.rtcp.address } : null,
      }
      : null;
    out.push({
      index, type: m.type, proto: m.proto, port: m.port, connection, rtcp, rtcpMux,
      // Session-level direction wins over the media's own, as in rtpengine 10.5.
      direction: sessionDir ?? dirLine ?? null,
      codecs, hasIce,
      ptime: p?.ptime ?? null,
    });
  }
  return out;
}

interface GrammarRule { name?: string; push?: string; reg: RegExp; names?: string[] }
/** sdp-transform's own attribute grammar (exported at runtime, not in its typings). */
const A_RULES = (sdpTransform as unknown as { grammar: { a: GrammarRule[] } }).grammar.a;
/**
 * The rules whose results mediaInfo reads. Every rule of the grammar is anchored on its own
 * attribute name (`^rtpmap:`, `^fmtp:` …), so a line starting `rtpmap:` can match no earlier rule,
 * and the later ones it may match (`invalid`) write nothing mediaInfo reads: trying just its own
 * rule gives what find() over the whole grammar gave, without the other regexes.
 */
const RULE_RTPMAP = A_RULES.find((r) => r.push === 'rtp')!;
const RULE_RTCP = A_RULES.find((r) => r.name === 'rtcp')!;
const RULE_PTIME = A_RULES.find((r) => r.name === 'ptime')!;

/**
 * sdp-transform's toIntIfInt: `String(Number(v)) === v ? Number(v) : v`. Plain digits without a
 * leading zero (payload types, rates, ports) are that number without the round trip through a
 * string, which was a third of readAttributes; anything else takes the original test.
 */
function toIntIfInt(v: string): string | number {
  const n = v.length;
  if (n > 0 && n < 16) {
    let x = 0, i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i) - 0x30;
      if (c < 0 || c > 9) break;
      x = x * 10 + c;
    }
    if (i === n && (n === 1 || v.charCodeAt(0) !== 0x30)) return x;
  }
  return String(Number(v)) === v ? Number(v) : v;
}

type SectionAttributes = { rtp: { payload: number; codec: string; rate?: number; encoding?: string }[]; rtcp?: { port: number; ipVer?: number; address?: string }; ptime?: number };

/**
 * What sdp-transform's parse() gives for one media section's a=rtpmap, a=rtcp and a=ptime lines
 * (the only values mediaInfo reads), by the same grammar rules applied the same way, without
 * parsing the rest of the SDP: sdp-transform tries every a= line against its whole grammar, so
 * it cost ~13 µs of mediaInfo's 16 µs for ngload's offer, far more for a WebRTC one. A text with a
 * lone CR (which sdp-transform splits and our parser does not) still goes through parse().
 */
function readAttributes(m: SdpMediaSection): SectionAttributes {
  const loc: Record<string, unknown> & { rtp: unknown[] } = { rtp: [] };
  for (const l of m.lines) {
    if (l.type !== 'a') continue;
    const v = l.value;
    const rule = v.startsWith('rtpmap:') ? RULE_RTPMAP : v.startsWith('rtcp:') ? RULE_RTCP : v.startsWith('ptime:') ? RULE_PTIME : null;
    if (rule === null) continue;
    const match = rule.reg.exec(v);
    if (match === null) continue;
    // sdp-transform's parseReg/attachProperties, for these rules.
    let target: Record<string, unknown>;
    if (rule.push) {
      target = {};
      ((loc[rule.push] ??= []) as unknown[]).push(target);
    } else if (rule.name && rule.names) {
      target = (loc[rule.name] ??= {}) as Record<string, unknown>;
    } else {
      if (rule.name) loc[rule.name] = toIntIfInt(match[1]!);
      continue;
    }
    const names = rule.names!;
    for (let i = 0; i < names.length; i++) if (match[i + 1] != null) target[names[i]!] = toIntIfInt(match[i + 1]!);
  }
  return loc as SectionAttributes;
}

/** The direction an attribute value names (`sendrecv`, or `sendrecv:…` as attrName reads it), or undefined. */
function directionOf(v: string): Direction | undefined {
  const c = v.charCodeAt(0);
  const d = c === 0x73 ? (v.charCodeAt(4) === 0x72 ? 'sendrecv' : 'sendonly') : c === 0x72 ? 'recvonly' : c === 0x69 ? 'inactive' : null;
  if (d === null || !v.startsWith(d)) return undefined;
  return v.length === d.length || v.charCodeAt(d.length) === 0x3a ? d : undefined;
}

/**
 * Every line with its CRLF, appended to one string: join('\r\n') + '\r\n' copied the text once
 * for the join and again when the trailing CRLF's rope was flattened.
 */
export function serializeSdp(doc: SdpDoc): string {
  let out = '';
  for (const l of doc.session) out += l.type + '=' + l.value + '\r\n';
  for (const m of doc.media) {
    const port = m.portCount !== null ? `${m.port}/${m.portCount}` : `${m.port}`;
    out += `m=${m.type} ${port} ${m.proto}${m.fmts.length ? ' ' + m.fmts.join(' ') : ''}\r\n`;
    for (const l of m.lines) out += l.type + '=' + l.value + '\r\n';
  }
  return out;
}
