// BUNDLE (RFC 8843) towards a WebRTC party: which of its media share one transport (one local
// socket pair, the first mid's), the a=group:BUNDLE line we write back to it, and the media
// plane's routes for the shared socket. rtpengine 10.5 drops the group and gives every m= line
// its own port, which a browser with bundlePolicy 'max-bundle' refuses; the plain side still gets
// separate m= lines and ports. Pure functions over the plain call state; no sockets, no NG.
import type { MediaState, Participant } from './model.js';
import { attrValue, isAttr, type MediaInfo, type SdpDoc, type SdpLine } from './sdp.js';

/** The a=mid of media section `index` (0-based), or null. */
export function midOf(doc: SdpDoc, index: number): string | null {
  const l = doc.media[index]!.lines.find((x) => x.type === 'a' && x.value.startsWith('mid:'));
  return l ? l.value.slice(4) : null;
}

/** The SSRCs a media section announces (a=ssrc:<ssrc> <attribute>), each once. */
export function ssrcsOf(doc: SdpDoc, index: number): number[] {
  const out = new Set<number>();
  for (const l of doc.media[index]!.lines) {
    if (!isAttr(l, 'ssrc')) continue;
    const n = Number(attrValue(l).split(' ')[0]);
    if (Number.isInteger(n) && n >= 0 && n <= 0xffffffff) out.add(n);
  }
  return [...out];
}

/** Transports we keep bundled: the party speaks ICE or DTLS (a browser), not a phone that copied a group line. */
function webrtcMedia(mi: MediaInfo): boolean {
  return mi.proto.startsWith('UDP/TLS/') || mi.hasIce;
}

/**
 * The BUNDLE groups of an offer: media section index → the index of the section whose transport
 * it uses (both 0-based). That is the group's first mid (the offerer's BUNDLE-tag, RFC 8843 7.2.1)
 * with a port; a later section with port 0 joins only with a=bundle-only (RFC 8843 6: Firefox with
 * max-bundle offers so), otherwise it is rejected and left out.
 */
export function offeredBundle(doc: SdpDoc, info: readonly MediaInfo[]): Map<number, number> {
  const out = new Map<number, number>();
  const byMid = new Map<string, number>();
  info.forEach((mi) => { const mid = midOf(doc, mi.index); if (mid !== null && !byMid.has(mid)) byMid.set(mid, mi.index); });
  for (const l of doc.session) {
    if (!isAttr(l, 'group')) continue;
    const [semantics, ...mids] = attrValue(l).split(' ').filter((x) => x !== '');
    if (semantics !== 'BUNDLE') continue;
    let owner = -1;
    for (const mid of mids) {
      const i = byMid.get(mid);
      if (i === undefined || out.has(i)) continue;
      const mi = info[i]!;
      if ((mi.port === 0 && !(owner >= 0 && isBundleOnly(doc, i))) || !webrtcMedia(mi)) continue;
      if (owner < 0) owner = i;
      out.set(i, owner);
    }
  }
  return out;
}

/** a=bundle-only (RFC 8843 6): port 0 in the offer means "only if bundled", not rejected. */
export function isBundleOnly(doc: SdpDoc, index: number): boolean {
  return doc.media[index]!.lines.some((l) => l.type === 'a' && l.value === 'bundle-only');
}

/**
 * RFC 8843 7.5.2: an offerer may write the transport (ICE, DTLS) only in the BUNDLE-tag's
 * section; every member's transport is the owner's.
 */
export function inheritTransport(m: MediaState, owner: MediaState): void {
  if (m === owner) return;
  m.remoteIce = owner.remoteIce ?? null;
  m.remoteFingerprint = owner.remoteFingerprint ?? null;
  m.remoteSetup = owner.remoteSetup ?? null;
}

/** `m` uses another media's sockets (its `local` is that media's): it owns none. */
export function isBundleMember(m: MediaState): boolean {
  return m.bundleOwner != null && m.bundleOwner !== m.index;
}

/** The media whose sockets `m` uses (itself when it is not bundled, or is the owner). */
export function bundleOwnerOf(p: Participant, m: MediaState): MediaState {
  return isBundleMember(m) ? p.medias[m.bundleOwner! - 1] ?? m : m;
}

/**
 * Puts media `m` on the transport of media `owner` (1-based; null: its own sockets). Sockets it
 * owned alone go to `retired`; a media that needs its own sockets again gets `local` null (new
 * ones are opened by the caller). The caller sets a member's `local` from its owner's.
 */
export function joinBundle(m: MediaState, owner: number | null, retired: number[]): void {
  const had = m.bundleOwner ?? null;
  if (had === owner) return;
  const ownedBefore = m.local !== null && (had === null || had === m.index);
  const ownsAfter = owner === null || owner === m.index;
  if (!ownsAfter && ownedBefore) {
    for (const l of [m.local!, ...(m.localExtra ?? [])]) retired.push(l.rtp, l.rtcp);
  }
  if (!ownsAfter || !ownedBefore) { m.local = null; m.localExtra = []; }
  m.bundleOwner = owner;
}

/** A member takes its owner's transport: sockets (every address), ICE credentials. */
export function shareTransport(p: Participant, m: MediaState, newCreds: () => { ufrag: string; pwd: string }): void {
  const o = bundleOwnerOf(p, m);
  if (o === m) return;
  o.ice ??= newCreds();
  m.local = o.local;
  m.localExtra = o.localExtra ?? [];
  m.ice = o.ice;
}

/**
 * The session-level a=group:BUNDLE lines towards a party: per owner, the mids of its bundled media
 * that are not rejected in this SDP (`accepted[i]` false: port 0, out of the group), owner first.
 */
export function bundleGroupLines(medias: readonly (MediaState | undefined)[], accepted: readonly boolean[]): SdpLine[] {
  const groups = new Map<number, string[]>();
  for (const m of medias) {
    if (!m || m.bundleOwner == null || m.mid === null || !accepted[m.index - 1]) continue;
    const mids = groups.get(m.bundleOwner) ?? [];
    if (m.bundleOwner === m.index) mids.unshift(m.mid); else mids.push(m.mid);
    groups.set(m.bundleOwner, mids);
  }
  return [...groups.values()].map((mids) => ({ type: 'a', value: `group:BUNDLE ${mids.join(' ')}` }));
}

/** The bundled media of `owner` in `from`, owner first, then in m= line order. */
export function bundleMembers(from: Participant, owner: MediaState): MediaState[] {
  const out = [owner];
  for (const m of from.medias) if (m && m !== owner && m.local && m.bundleOwner === owner.index) out.push(m);
  return out;
}

/** Payload types and clock rates (Hz) of the codecs a party's SDP names (`opus/48000/2` → 48000), as pairs. */
export function clockRatesOf(codecs: MediaInfo['codecs']): number[] {
  const out: number[] = [];
  for (const c of codecs) {
    // The second field of the encoding (what split('/')[1] gave), without the array.
    const e = c.encoding;
    const i = e === null ? -1 : e.indexOf('/');
    if (i < 0) continue;
    const j = e!.indexOf('/', i + 1);
    const hz = Number(e!.slice(i + 1, j < 0 ? e!.length : j));
    if (Number.isInteger(hz) && hz > 0) out.push(c.pt, hz);
  }
  return out;
}
