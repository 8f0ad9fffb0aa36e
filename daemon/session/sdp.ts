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
const DIRECTIONS = new Set<string>(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

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

/** Splits an SDP body into the ordered model. Throws SessionError BAD_SDP or NO_MEDIA. */
export function parseSdp(text: string): SdpDoc {
  if (text.length > MAX_SDP_BYTES) throw new SessionError('BAD_SDP', 'SDP too large');
  const rawLines = text.split(/\r?\n/);
  while (rawLines.length && rawLines[rawLines.length - 1] === '') rawLines.pop();
  if (rawLines[0] !== 'v=0') throw new SessionError('BAD_SDP', 'SDP does not start with v=0');
  const doc: SdpDoc = { session: [], media: [] };
  for (const raw of rawLines) {
    if (raw.length < 2 || raw[1] !== '=' || !/^[a-z]$/.test(raw[0]!)) {
      throw new SessionError('BAD_SDP', 'malformed SDP line');
    }
    const line: SdpLine = { type: raw[0]!, value: raw.slice(2) };
    if (line.type === 'm') {
      const m = /^(\S+) (\d+)(?:\/(\d+))? (\S+)(?: (.*))?$/.exec(line.value);
      if (!m) throw new SessionError('BAD_SDP', 'malformed m= line');
      const port = Number(m[2]);
      if (port > 65535) throw new SessionError('BAD_SDP', 'bad port in m= line');
      if (doc.media.length >= MAX_MEDIA) throw new SessionError('BAD_SDP', 'too many media sections');
      doc.media.push({
        type: m[1]!, port, portCount: m[3] ? Number(m[3]) : null, proto: m[4]!,
        fmts: (m[5] ?? '').split(' ').filter((f) => f !== ''), lines: [],
      });
    } else if (doc.media.length) {
      doc.media[doc.media.length - 1]!.lines.push(line);
    } else {
      doc.session.push(line);
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
  const parsed = /\r(?!\n)/.test(text) ? sdpTransform.parse(text) : { media: doc.media.map(readAttributes) };
  const sessionConn = doc.session.find((l) => l.type === 'c');
  const sessionDir = doc.session.map(attrOf).find((n) => n !== null && DIRECTIONS.has(n)) as Direction | undefined;
  return doc.media.map((m, index) => {
    const p = parsed.media[index];
    const connLine = m.lines.find((l) => l.type === 'c') ?? sessionConn;
    const connection = connLine ? parseConnection(connLine.value) : null;
    if (!connection) throw new SessionError('INCOMPLETE_SDP', 'media without connection address');
    const rtpmaps = new Map<number, string>();
    for (const r of p?.rtp ?? []) {
      rtpmaps.set(r.payload, `${r.codec}/${r.rate ?? ''}${r.encoding ? '/' + r.encoding : ''}`);
    }
    const codecs = m.fmts.map((f) => {
      const pt = Number(f);
      return { pt, encoding: rtpmaps.get(pt) ?? STATIC_PAYLOAD_TYPES[pt] ?? null };
    });
    const dirLine = m.lines.map(attrOf).find((n) => n !== null && DIRECTIONS.has(n)) as Direction | undefined;
    const rtcp = p?.rtcp
      ? {
        port: p.rtcp.port,
        connection: p.rtcp.address ? { family: (p.rtcp.ipVer === 6 ? 6 : 4) as 4 | 6, address: p.rtcp.address } : null,
      }
      : null;
    return {
      index, type: m.type, proto: m.proto, port: m.port, connection, rtcp,
      rtcpMux: m.lines.some((l) => l.type === 'a' && l.value === 'rtcp-mux'),
      // Session-level direction wins over the media's own, as in rtpengine 10.5.
      direction: sessionDir ?? dirLine ?? null,
      codecs,
      hasIce: m.lines.some((l) => l.type === 'a' && (l.value.startsWith('candidate:') || l.value.startsWith('ice-ufrag:'))),
      ptime: p?.ptime ?? null,
    };
  });
}

interface GrammarRule { name?: string; push?: string; reg: RegExp; names?: string[] }
/** sdp-transform's own attribute grammar (exported at runtime, not in its typings). */
const A_RULES = (sdpTransform as unknown as { grammar: { a: GrammarRule[] } }).grammar.a;

const toIntIfInt = (v: string): string | number => (String(Number(v)) === v ? Number(v) : v);

/**
 * What sdp-transform's parse() gives for one media section's a=rtpmap, a=rtcp and a=ptime lines
 * (the only values mediaInfo reads), by the same grammar rules applied the same way, without
 * parsing the rest of the SDP: sdp-transform tries every a= line against its whole grammar, so
 * it cost ~13 µs of mediaInfo's 16 µs for ngload's offer, far more for a WebRTC one. A text with a
 * lone CR (which sdp-transform splits and our parser does not) still goes through parse().
 */
function readAttributes(m: SdpMediaSection): { rtp: { payload: number; codec: string; rate?: number; encoding?: string }[]; rtcp?: { port: number; ipVer?: number; address?: string }; ptime?: number } {
  const loc: Record<string, unknown> & { rtp: unknown[] } = { rtp: [] };
  for (const l of m.lines) {
    if (l.type !== 'a') continue;
    const v = l.value;
    if (!v.startsWith('rtpmap:') && !v.startsWith('rtcp:') && !v.startsWith('ptime:')) continue;
    const rule = A_RULES.find((r) => r.reg.test(v));
    if (!rule) continue;
    const match = v.match(rule.reg)!;
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
    rule.names!.forEach((n, i) => { if (match[i + 1] != null) target[n] = toIntIfInt(match[i + 1]!); });
  }
  return loc as ReturnType<typeof readAttributes>;
}

function attrOf(l: SdpLine): string | null {
  return l.type === 'a' ? attrName(l) : null;
}

export function serializeSdp(doc: SdpDoc): string {
  const out: string[] = [];
  for (const l of doc.session) out.push(`${l.type}=${l.value}`);
  for (const m of doc.media) {
    const port = m.portCount !== null ? `${m.port}/${m.portCount}` : `${m.port}`;
    out.push(`m=${m.type} ${port} ${m.proto}${m.fmts.length ? ' ' + m.fmts.join(' ') : ''}`);
    for (const l of m.lines) out.push(`${l.type}=${l.value}`);
  }
  return out.join('\r\n') + '\r\n';
}
