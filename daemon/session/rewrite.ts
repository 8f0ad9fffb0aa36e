// Produces the SDP one party receives: the other party's SDP with our addresses and ports,
// in the line order rtpengine 10.5 writes (../shared/ng-protocol.md §4), so that proxies and
// tests written against rtpengine see the same body.
import { randomBytes } from 'node:crypto';
import { attrName, attrValue, STATIC_PAYLOAD_TYPES, type Direction, type MediaInfo, type SdpDoc, type SdpLine } from './sdp.js';

export type IceMode = 'default' | 'remove' | 'force' | 'optional' | 'force-relay';

export interface IceCredentials { ufrag: string; pwd: string }

export interface LocalCandidate { foundation: string; address: string; family: 4 | 6; port: number; rtcpPort: number }

/** Where one media section points after the rewrite; null: rejected (port 0). */
export interface MediaTarget {
  address: string;
  family: 4 | 6;
  port: number;
  rtcpPort: number;
  /** Write a=rtcp-mux (and a=rtcp with the RTP port when `muxOnly`). */
  rtcpMux: boolean;
  muxOnly: boolean;
  proto: string;
  /** Payload types kept, in output order (codec strip/offer/except applied). */
  payloadTypes: string[];
  direction: Direction;
  /** a=mid to write when the input had none (generate-mid, or the offer's mid copied to the answer). */
  mid: string | null;
  ice: { creds: IceCredentials; candidates: LocalCandidate[]; trickle: boolean } | null;
}

export interface RewritePlan {
  medias: (MediaTarget | null)[];
  /** Address written into o= and session c= (the first media's, or the interface's). */
  sessionAddress: { address: string; family: 4 | 6 };
  replace: ReadonlySet<string>;
  iceMode: IceMode;
  ptime: number | null;
  noRtcpAttribute: boolean;
  fullRtcpAttribute: boolean;
  originalSendrecv: boolean;
  stripExtmap: boolean;
  loopProtect: string | null;
  /** o= version to write, when SDP-version/username/session-name replacement asks for it. */
  origin: { username: string | null; sessionName: string | null; version: string | null } | null;
}

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);
/** Attributes this module writes itself; the input's are dropped and rewritten in their place. */
const MANAGED = new Set([
  'rtpmap', 'fmtp', 'rtcp-fb', 'rtcp', 'rtcp-mux', 'mid', 'ptime', 'sendrecv', 'sendonly', 'recvonly', 'inactive',
]);
const ICE_ATTRS = new Set(['ice-ufrag', 'ice-pwd', 'ice-options', 'candidate', 'end-of-candidates', 'remote-candidates', 'ice-lite', 'ice-mismatch']);
const SESSION_DROPPED = new Set(['group', 'sendrecv', 'sendonly', 'recvonly', 'inactive']);

export function randomAlnum(n: number): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const b = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += abc[b[i]! % abc.length];
  return s;
}

function ipLabel(family: 4 | 6): string { return family === 6 ? 'IP6' : 'IP4'; }

function rewriteConnection(value: string, address: string, family: 4 | 6, keepZero: boolean): string {
  const m = /^IN IP[46] (\S+)(.*)$/.exec(value);
  if (keepZero && m && (m[1] === '0.0.0.0' || m[1] === '::')) return value;
  return `IN ${ipLabel(family)} ${address}`;
}

function rewriteSession(doc: SdpDoc, info: MediaInfo[], plan: RewritePlan): SdpLine[] {
  const out: SdpLine[] = [];
  const reliesOnSession = doc.media.map((m, i) => plan.medias[i] !== null && !m.lines.some((l) => l.type === 'c'));
  const keepZero = !plan.replace.has('zero-address');
  const sa = plan.sessionAddress;
  for (const l of doc.session) {
    if (l.type === 'o') {
      const f = l.value.split(' ');
      if (f.length >= 6) {
        if (plan.replace.has('origin')) { f[4] = ipLabel(sa.family); f[5] = sa.address; f.length = 6; }
        if (plan.origin?.username != null) f[0] = plan.origin.username;
        if (plan.origin?.version != null) f[2] = plan.origin.version;
        out.push({ type: 'o', value: f.join(' ') });
        continue;
      }
    } else if (l.type === 's' && plan.origin?.sessionName != null) {
      out.push({ type: 's', value: plan.origin.sessionName });
      continue;
    } else if (l.type === 'c') {
      const first = reliesOnSession.findIndex((r) => r);
      if (first >= 0 || plan.replace.has('session-connection')) {
        const t = plan.medias[first >= 0 ? first : 0];
        const addr = t ? t : sa;
        out.push({ type: 'c', value: rewriteConnection(l.value, addr.address, addr.family, keepZero) });
        continue;
      }
    } else if (l.type === 'a') {
      const n = attrName(l);
      if (SESSION_DROPPED.has(n)) continue;
      if (n === 'rtpengine' && plan.loopProtect) continue;
      if (ICE_ATTRS.has(n) && plan.iceMode !== 'optional' && plan.iceMode !== 'force-relay') continue;
    }
    out.push(l);
  }
  if (plan.loopProtect) out.push({ type: 'a', value: `rtpengine:${plan.loopProtect}` });
  void info;
  return out;
}

function rewriteMedia(doc: SdpDoc, i: number, info: MediaInfo, t: MediaTarget | null, plan: RewritePlan): SdpDoc['media'][number] {
  const m = doc.media[i]!;
  const keepZero = !plan.replace.has('zero-address');
  if (t === null) {
    // Rejected: port 0, connection rewritten, everything else as it came.
    return { ...m, port: 0, lines: m.lines.filter((l) => l.type !== 'c') };
  }
  const lines: SdpLine[] = [];
  const pts = new Set(t.payloadTypes);
  const rtpmap = new Map<string, SdpLine>();
  const fmtp = new Map<string, SdpLine[]>();
  const fb = new Map<string, SdpLine[]>();
  let mid: string | null = null;
  let inputDirection: SdpLine | null = null;
  const pre: SdpLine[] = []; // non-a lines (i=, c=, b=, k=) keep their place before the attributes
  const other: SdpLine[] = [];
  for (const l of m.lines) {
    if (l.type !== 'a') {
      if (l.type === 'c') pre.push({ type: 'c', value: rewriteConnection(l.value, t.address, t.family, keepZero) });
      else pre.push(l);
      continue;
    }
    const n = attrName(l);
    const v = attrValue(l);
    const pt = v.split(' ')[0]!;
    if (n === 'rtpmap') { if (pts.has(pt)) rtpmap.set(pt, l); continue; }
    if (n === 'fmtp') { if (pts.has(pt)) fmtp.set(pt, [...(fmtp.get(pt) ?? []), l]); continue; }
    if (n === 'rtcp-fb' && pt !== '*') { if (pts.has(pt)) fb.set(pt, [...(fb.get(pt) ?? []), l]); continue; }
    if (n === 'mid') { mid = v; continue; }
    if (DIRECTIONS.has(n)) { if (plan.originalSendrecv) other.push(l); else inputDirection ??= l; continue; }
    if (n === 'ptime') { if (plan.ptime === null) other.push(l); continue; }
    if (n === 'extmap' && plan.stripExtmap) continue;
    if (MANAGED.has(n) && n !== 'rtcp-fb') continue;
    if (ICE_ATTRS.has(n) && plan.iceMode !== 'optional' && plan.iceMode !== 'force-relay') continue;
    other.push(l);
  }
  lines.push(...pre);
  // ptime passes through at the end (after a=rtcp), where rtpengine writes it.
  const ptimeLines = other.filter((l) => attrName(l) === 'ptime');
  lines.push(...other.filter((l) => attrName(l) !== 'ptime'));
  const midOut = mid ?? t.mid;
  if (midOut !== null) lines.push({ type: 'a', value: `mid:${midOut}` });
  for (const pt of t.payloadTypes) {
    const r = rtpmap.get(pt) ?? (STATIC_PAYLOAD_TYPES[Number(pt)] ? { type: 'a', value: `rtpmap:${pt} ${STATIC_PAYLOAD_TYPES[Number(pt)]}` } : null);
    if (r) lines.push(r);
    lines.push(...(fmtp.get(pt) ?? []), ...(fb.get(pt) ?? []));
  }
  if (!plan.originalSendrecv) lines.push({ type: 'a', value: t.direction });
  if (!plan.noRtcpAttribute) {
    const port = t.muxOnly ? t.port : t.rtcpPort;
    lines.push({ type: 'a', value: plan.fullRtcpAttribute ? `rtcp:${port} IN ${ipLabel(t.family)} ${t.address}` : `rtcp:${port}` });
  }
  if (t.rtcpMux) lines.push({ type: 'a', value: 'rtcp-mux' });
  if (t.ice) {
    lines.push({ type: 'a', value: `ice-ufrag:${t.ice.creds.ufrag}` }, { type: 'a', value: `ice-pwd:${t.ice.creds.pwd}` });
    if (t.ice.trickle) lines.push({ type: 'a', value: 'ice-options:trickle' });
    t.ice.candidates.forEach((c, k) => {
      // RFC 8445 5.1.2.1: type preference 126 (host), local preference falls per address.
      const local = 65535 - k;
      const prio = (comp: number): number => (126 << 24) + (local << 8) + (256 - comp);
      lines.push({ type: 'a', value: `candidate:${c.foundation} 1 UDP ${prio(1)} ${c.address} ${c.port} typ host` });
      if (!t.muxOnly) lines.push({ type: 'a', value: `candidate:${c.foundation} 2 UDP ${prio(2)} ${c.address} ${c.rtcpPort} typ host` });
    });
    if (t.ice.trickle) lines.push({ type: 'a', value: 'end-of-candidates' });
  }
  if (plan.ptime !== null) lines.push({ type: 'a', value: `ptime:${plan.ptime}` });
  else lines.push(...ptimeLines);
  void inputDirection; void info;
  return { type: m.type, port: t.port, portCount: m.portCount, proto: t.proto, fmts: t.payloadTypes, lines };
}

export function rewriteSdp(doc: SdpDoc, info: MediaInfo[], plan: RewritePlan): SdpDoc {
  return {
    session: rewriteSession(doc, info, plan),
    media: doc.media.map((_, i) => rewriteMedia(doc, i, info[i]!, plan.medias[i] ?? null, plan)),
  };
}
