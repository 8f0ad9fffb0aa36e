// Produces the SDP one party receives: the other party's SDP with our addresses and ports,
// in the line order rtpengine 10.5 writes (../shared/ng-protocol.md §4), so that proxies and
// tests written against rtpengine see the same body.
import { randomBytes } from 'node:crypto';
import { attrName, attrValue, STATIC_PAYLOAD_TYPES, type Direction, type SdpDoc, type SdpLine, type SdpMediaSection } from './sdp.js';

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
  /** Write `mid` whatever the input says (answers: the offerer's own mid, or none). */
  midFixed?: boolean;
  ice: { creds: IceCredentials; candidates: LocalCandidate[]; trickle: boolean; lite?: boolean } | null;
  /** a=ptime to write (the input's is always dropped); null: none. */
  ptime: number | null;
  /** a=fmtp lines to use for a payload type whose input has none (answers to a changed codec list). */
  fmtpFallback: ReadonlyMap<string, SdpLine[]>;
  /** a=crypto, a=setup, a=fingerprint to write after RTCP (webrtc.ts); the input's are dropped. */
  security?: SdpLine[];
  /** false: the receiver is plain AVP converted from AVPF: a=rtcp-fb lines are dropped. */
  rtcpFeedback?: boolean;
  /** The input section was a=bundle-only: its zero c= address means no hold, so ours is written. */
  bundleOnly?: boolean;
}

export interface RewritePlan {
  medias: (MediaTarget | null)[];
  /** Address written into o= and session c= (the first media's, or the interface's). */
  sessionAddress: { address: string; family: 4 | 6 };
  replace: ReadonlySet<string>;
  iceMode: IceMode;
  noRtcpAttribute: boolean;
  fullRtcpAttribute: boolean;
  originalSendrecv: boolean;
  stripExtmap: boolean;
  loopProtect: string | null;
  /** Write a=ice-lite at session level (ICE-lite forward towards the answerer, backward towards the offerer). */
  iceLite?: boolean;
  /** a=group lines to write after t= (BUNDLE towards a bundling party; the input's are dropped). */
  groups?: SdpLine[];
  /** o= version to write, when SDP-version/username/session-name replacement asks for it. */
  origin: { username: string | null; sessionName: string | null; version: string | null } | null;
}

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);
/** Attributes this module writes itself; the input's are dropped and rewritten in their place. */
const MANAGED = new Set([
  'rtpmap', 'fmtp', 'rtcp-fb', 'rtcp', 'rtcp-mux', 'mid', 'ptime', 'sendrecv', 'sendonly', 'recvonly', 'inactive',
  'crypto', 'setup', 'fingerprint',
  // RFC 8843 6: only an offerer's, about its own transport; never passed on, never in an answer.
  'bundle-only',
]);
const ICE_ATTRS = new Set(['ice-ufrag', 'ice-pwd', 'ice-options', 'candidate', 'end-of-candidates', 'remote-candidates', 'ice-lite', 'ice-mismatch']);
const SESSION_DROPPED = new Set(['group', 'sendrecv', 'sendonly', 'recvonly', 'inactive', 'setup', 'fingerprint']);

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

function rewriteSession(doc: SdpDoc, plan: RewritePlan): SdpLine[] {
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
    } else if (l.type === 't') {
      out.push(l, ...(plan.groups ?? []));
      continue;
    } else if (l.type === 'a') {
      const n = attrName(l);
      if (SESSION_DROPPED.has(n)) continue;
      // Another relay's marker stays (rtpengine 10.5 keeps it and adds its own below).
      if (n === 'rtpengine' && attrValue(l) === plan.loopProtect) continue;
      if (ICE_ATTRS.has(n) && plan.iceMode !== 'optional' && plan.iceMode !== 'force-relay') continue;
    }
    out.push(l);
  }
  if (plan.iceLite) out.push({ type: 'a', value: 'ice-lite' });
  if (plan.loopProtect) out.push({ type: 'a', value: `rtpengine:${plan.loopProtect}` });
  return out;
}

/**
 * A rejected section (port 0) keeps its lines in place with c= pointing at us, as rtpengine
 * does; what described the stream (codecs, RTCP, ICE) goes, since there is no stream.
 */
function rejectedMedia(m: SdpMediaSection, plan: RewritePlan): SdpMediaSection {
  const sa = plan.sessionAddress;
  const keepZero = !plan.replace.has('zero-address');
  const lines = m.lines.flatMap((l): SdpLine[] => {
    if (l.type === 'c') return [{ type: 'c', value: rewriteConnection(l.value, sa.address, sa.family, keepZero) }];
    if (l.type !== 'a') return [l];
    const n = attrName(l);
    const perCodec = n === 'rtpmap' || n === 'fmtp' || (n === 'rtcp-fb' && !attrValue(l).startsWith('*'));
    return perCodec || n === 'rtcp' || n === 'rtcp-mux' || ICE_ATTRS.has(n) ? [] : [l];
  });
  return { ...m, port: 0, lines };
}

function rewriteMedia(m: SdpMediaSection, t: MediaTarget | null, plan: RewritePlan): SdpMediaSection {
  if (t === null) return rejectedMedia(m, plan);
  const keepZero = !plan.replace.has('zero-address');
  const keepIce = plan.iceMode === 'optional' || plan.iceMode === 'force-relay';
  const pts = new Set(t.payloadTypes);
  const rtpmap = new Map<string, SdpLine>();
  const fmtp = new Map<string, SdpLine[]>();
  const fb = new Map<string, SdpLine[]>();
  const push = (map: Map<string, SdpLine[]>, pt: string, l: SdpLine): void => {
    const had = map.get(pt);
    if (had === undefined) map.set(pt, [l]); else had.push(l);
  };
  let mid: string | null = null;
  // Non-a lines (i=, c=, b=, k=) keep their place before the attributes.
  const pre: SdpLine[] = [];
  // Attributes we do not manage pass through in their order (rtcp-fb:* among them).
  const other: SdpLine[] = [];
  for (const l of m.lines) {
    if (l.type !== 'a') {
      pre.push(l.type === 'c' ? { type: 'c', value: rewriteConnection(l.value, t.address, t.family, keepZero && !t.bundleOnly) } : l);
      continue;
    }
    const value = l.value;
    const colon = value.indexOf(':');
    const n = colon < 0 ? value : value.slice(0, colon);
    if (n === 'rtpmap' || n === 'fmtp' || n === 'rtcp-fb') {
      // The payload type: attrValue(l).split(' ')[0], without the array.
      let pt = '';
      if (colon >= 0) {
        const sp = value.indexOf(' ', colon + 1);
        pt = value.slice(colon + 1, sp < 0 ? value.length : sp);
      }
      if (n === 'rtpmap') { if (pts.has(pt)) rtpmap.set(pt, l); continue; }
      if (n === 'fmtp') { if (pts.has(pt)) push(fmtp, pt, l); continue; }
      if (t.rtcpFeedback === false) continue;
      if (pt !== '*') { if (pts.has(pt)) push(fb, pt, l); continue; }
      other.push(l);
      continue;
    }
    if (n === 'mid') { mid = colon < 0 ? '' : value.slice(colon + 1); continue; }
    if (DIRECTIONS.has(n) && plan.originalSendrecv) { other.push(l); continue; }
    if (n === 'extmap' && plan.stripExtmap) continue;
    if (MANAGED.has(n)) continue;
    if (ICE_ATTRS.has(n) && !keepIce) continue;
    other.push(l);
  }
  const lines: SdpLine[] = pre;
  for (const l of other) lines.push(l);
  const midOut = t.midFixed ? t.mid : mid ?? t.mid;
  if (midOut !== null) lines.push({ type: 'a', value: `mid:${midOut}` });
  for (const pt of t.payloadTypes) {
    const r = rtpmap.get(pt);
    if (r !== undefined) lines.push(r);
    else {
      const known = STATIC_PAYLOAD_TYPES[Number(pt)];
      if (known) lines.push({ type: 'a', value: `rtpmap:${pt} ${known}` });
    }
    const f = fmtp.get(pt) ?? t.fmtpFallback.get(pt);
    if (f !== undefined) for (const x of f) lines.push(x);
    const b = fb.get(pt);
    if (b !== undefined) for (const x of b) lines.push(x);
  }
  if (!plan.originalSendrecv) lines.push({ type: 'a', value: t.direction });
  if (!plan.noRtcpAttribute) {
    const port = t.muxOnly ? t.port : t.rtcpPort;
    lines.push({ type: 'a', value: plan.fullRtcpAttribute ? `rtcp:${port} IN ${ipLabel(t.family)} ${t.address}` : `rtcp:${port}` });
  }
  if (t.rtcpMux) lines.push({ type: 'a', value: 'rtcp-mux' });
  if (t.security) lines.push(...t.security);
  // rtpengine 10.5 writes a=ptime here, after RTCP and before ICE, whether passed through or set.
  if (t.ptime !== null) lines.push({ type: 'a', value: `ptime:${t.ptime}` });
  if (t.ice) lines.push(...iceLines(t, t.ice));
  return { type: m.type, port: t.port, portCount: m.portCount, proto: t.proto, fmts: t.payloadTypes, lines };
}

function iceLines(t: MediaTarget, ice: NonNullable<MediaTarget['ice']>): SdpLine[] {
  const a = (value: string): SdpLine => ({ type: 'a', value });
  const out = [a(`ice-ufrag:${ice.creds.ufrag}`), a(`ice-pwd:${ice.creds.pwd}`)];
  if (ice.trickle) out.push(a('ice-options:trickle'));
  // RFC 8445 5.1.2.1: type preference 126 (host), local preference falls per address.
  const prio = (k: number, comp: number): number => (126 << 24) + ((65535 - k) << 8) + (256 - comp);
  // All component-1 candidates first, then component 2 (rtpengine's order).
  const comps = t.muxOnly ? [1] : [1, 2];
  for (const comp of comps) {
    ice.candidates.forEach((c, k) => {
      out.push(a(`candidate:${c.foundation} ${comp} UDP ${prio(k, comp)} ${c.address} ${comp === 1 ? c.port : c.rtcpPort} typ host`));
    });
  }
  if (ice.trickle) out.push(a('end-of-candidates'));
  return out;
}

export function rewriteSdp(doc: SdpDoc, plan: RewritePlan): SdpDoc {
  return {
    session: rewriteSession(doc, plan),
    media: doc.media.map((m, i) => rewriteMedia(m, plan.medias[i] ?? null, plan)),
  };
}
