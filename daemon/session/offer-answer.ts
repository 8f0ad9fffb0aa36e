// Offer/answer: turns one party's SDP into the other party's, choosing local sockets and the
// forwarding plan. Works on the plain call state; the media plane is reached only through the
// plan it is handed.
import type { LogicalInterface, InterfaceAddress } from '../config/load.js';
import type { BundleRoute, MediaPlane, SocketIce, SocketPlan } from '../../media/plane.js';
import { NoPortsError } from '../../media/plane.js';
import { SessionError } from './errors.js';
import type { Call, LocalPair, MediaState, OfferAnswerOptions, Participant } from './model.js';
import { attrValue, isAttr, MAX_SDP_BYTES, mediaInfo, parseSdp, serializeSdp, type Direction, type MediaInfo, type SdpDoc, type SdpLine } from './sdp.js';
import { randomAlnum, rewriteSdp, type MediaTarget, type RewritePlan } from './rewrite.js';
import {
  bundleGroupLines, bundleMembers, bundleOwnerOf, clockRatesOf, inheritTransport, isBundleMember, joinBundle, midOf, offeredBundle,
  shareTransport, ssrcsOf,
} from './bundle.js';
import {
  answerCrypto, cryptoLines, DEFAULT_WEBRTC, isFeedbackProto, mediaSecurity, offerCrypto, socketCrypto, socketIce, takeSecurity,
} from './webrtc.js';

/**
 * The a=rtpengine value this process writes with loop-protect. One per process, as in
 * rtpengine, so that an SDP coming back to us can be recognised as our own.
 */
export const LOOP_PROTECT_ID = randomAlnum(12).toLowerCase();

export interface OfferAnswerContext {
  plane: MediaPlane;
  interfaces: readonly LogicalInterface[];
  sipSource: boolean;
  nowMs: number;
  /** Sockets that the caller closes once the command has succeeded (replaced legs). */
  retired: number[];
  warn: (fields: object, msg: string) => void;
  /**
   * The caller installs the whole call's plans right after (call-table.ts does): the pair's
   * plans are then not installed here too (that was every command's plans computed twice).
   */
  callerInstalls?: boolean;
  /**
   * Our DTLS certificate's fingerprint in `hash` (sha-1 … sha-512), as written in a=fingerprint;
   * null or absent: no certificate, so no DTLS is offered or answered.
   */
  fingerprint?: (hash: string) => string | null;
}

export function newParticipant(call: Call, tag: string, viaBranch: string | null, nowMs: number, itf: string): Participant {
  const p: Participant = {
    id: call.nextParticipantId++, tag, viaBranch, label: null, createdMs: nowMs, interfaceName: itf,
    peerId: null, medias: [], flags: { asymmetric: false, strictSource: false, mediaHandover: false, portLatching: false },
    sdpIn: null, sdpOut: null, originVersion: null, originUsername: null, sessionName: null,
  };
  call.participants.push(p);
  return p;
}

export function findInterface(ctx: OfferAnswerContext, name: string | null, current: string | null): LogicalInterface {
  const byName = (n: string | null): LogicalInterface | undefined => (n === null ? undefined : ctx.interfaces.find((i) => i.name === n));
  const found = byName(name) ?? byName(current) ?? ctx.interfaces[0]!;
  if (name !== null && !byName(name)) ctx.warn({ interface: name }, 'unknown interface, using the default');
  return found;
}

function pickAddress(itf: LogicalInterface, family: 4 | 6 | null): InterfaceAddress {
  return itf.addresses.find((a) => a.family === family) ?? itf.addresses[0]!;
}

async function openLocal(ctx: OfferAnswerContext, addr: InterfaceAddress, mediaAddress: string | null, callId: string): Promise<LocalPair> {
  try {
    // One call's sockets stay together (one media worker), so a plan never links two workers.
    const p = await ctx.plane.openPair(addr.address, callId);
    return { address: addr.address, advertised: mediaAddress ?? addr.advertised, family: addr.family, port: p.port, rtp: p.rtp, rtcp: p.rtcp };
  } catch (e) {
    if (e instanceof NoPortsError) throw new SessionError('NO_PORTS', e.message);
    throw e;
  }
}

function parse(sdp: string): { doc: SdpDoc; info: MediaInfo[] } {
  const doc = parseSdp(sdp);
  return { doc, info: mediaInfo(doc, sdp) };
}

const ZERO = new Set(['0.0.0.0', '::']);

/** Equal as JSON.stringify wrote them (both {address, port}, or both null), without the strings. */
function sameEndpoint(a: { address: string; port: number } | null, b: { address: string; port: number } | null): boolean {
  return a === b || (a !== null && b !== null && a.address === b.address && a.port === b.port);
}

/** Updates what a party's SDP says about where it receives. */
function takeRemote(ctx: OfferAnswerContext, opts: OfferAnswerOptions, m: MediaState, info: MediaInfo, bundleOnly = false): boolean {
  let address = info.connection?.address ?? null;
  const sipSource = opts.flags.has('SIP-source-address') || (ctx.sipSource && !opts.flags.has('trust-address'));
  if (sipSource && opts.receivedFrom && !info.hasIce) address = opts.receivedFrom.address;
  const beforeRtp = m.remoteRtp, beforeRtcp = m.remoteRtcp;
  // A bundle-only section (port 0, RFC 8843 6) is not rejected; it receives on the bundle's transport.
  m.rejected = info.port === 0 && !bundleOnly;
  if (info.port === 0 || address === null || ZERO.has(address)) {
    m.remoteRtp = null; m.remoteRtcp = null;
  } else {
    m.remoteRtp = { address, port: info.port };
    m.remoteRtcp = info.rtcp
      ? { address: info.rtcp.connection?.address ?? address, port: info.rtcp.port }
      : info.rtcpMux ? { address, port: info.port } : { address, port: info.port + 1 };
  }
  const zero = info.connection !== null && ZERO.has(info.connection.address);
  m.direction = info.direction ?? (zero ? 'sendonly' : 'sendrecv');
  m.payloadTypes = info.codecs.map((c) => c.pt);
  m.clockRates = clockRatesOf(info.codecs);
  m.protocol = info.proto;
  // Going on hold (no address) or coming back from it is no move: rtpengine keeps its ports.
  return m.remoteRtp !== null && (beforeRtp !== null || beforeRtcp !== null)
    && !(sameEndpoint(beforeRtp, m.remoteRtp) && sameEndpoint(beforeRtcp, m.remoteRtcp));
}

function emptyMedia(info: MediaInfo): MediaState {
  return {
    index: info.index + 1, type: info.type, protocol: info.proto, remoteRtp: null, remoteRtcp: null, local: null,
    direction: 'sendrecv', rtcpMux: false, payloadTypes: [], rejected: false, mid: null, ice: null, foundation: null,
  };
}

function codecName(encoding: string | null): string {
  return encoding === null ? '' : encoding.split('/')[0]!;
}

/** Payload types written towards the answerer after strip/except/offer/mask (no transcoding). */
function offeredPayloadTypes(info: MediaInfo, codec: OfferAnswerOptions['codec']): string[] {
  // No codec flags (the usual offer): every payload type as offered, without the name sets.
  if (!codec.strip.length && !codec.mask.length && !codec.except.length && !codec.offer.length) {
    return info.codecs.map((c) => String(c.pt));
  }
  const strip = new Set([...codec.strip, ...codec.mask]);
  const stripAll = strip.has('all') || strip.has('full');
  const keepNames = new Set([...codec.except, ...codec.offer]);
  let kept = info.codecs.filter((c) => {
    const n = codecName(c.encoding);
    if (keepNames.has(n) || keepNames.has(c.encoding ?? '')) return true;
    return !stripAll && !strip.has(n) && !strip.has(c.encoding ?? '');
  });
  if (stripAll && codec.offer.length) {
    const rank = (n: string): number => { const i = codec.offer.indexOf(n); return i < 0 ? codec.offer.length : i; };
    kept = [...kept].sort((a, b) => rank(codecName(a.encoding)) - rank(codecName(b.encoding)));
  }
  return kept.map((c) => String(c.pt));
}

function canSend(d: Direction): boolean { return d === 'sendrecv' || d === 'sendonly'; }
function canReceive(d: Direction): boolean { return d === 'sendrecv' || d === 'recvonly'; }

/** Where what a party sends on media `m` goes: the peer's media of the same index, if it takes it. */
function routeOf(m: MediaState, peer: MediaState | undefined): { sink: number | null; rtcpSink: number | null; forward: boolean } {
  const sinkLocal = peer?.local ?? null;
  const forward = peer !== undefined && sinkLocal !== null && !m.rejected && !peer.rejected
    && canSend(m.direction) && canReceive(peer.direction);
  const rtcpSink = sinkLocal === null ? null : peer!.rtcpMux ? sinkLocal.rtp : sinkLocal.rtcp;
  return { sink: sinkLocal?.rtp ?? null, rtcpSink, forward };
}

/** ICE of a BUNDLE socket: the transport media's, with the candidates any bundled section gave. */
function bundleIce(members: readonly MediaState[], t: MediaState, component: 1 | 2): SocketIce | null {
  const ice = socketIce(t, component);
  if (ice === null) return null;
  const seen = new Set(ice.candidates.map((c) => `${c.address} ${c.port}`));
  for (const x of members) {
    for (const c of x.remoteIce?.candidates ?? []) {
      if (c.component !== component || seen.has(`${c.address} ${c.port}`)) continue;
      seen.add(`${c.address} ${c.port}`);
      ice.candidates.push(c);
    }
  }
  return ice;
}

/** Socket plans for media that `from` sends and `to` receives (from's sockets, sinking into to's). */
export function forwardPlans(from: Participant, to: Participant | null): SocketPlan[] {
  const plans: SocketPlan[] = [];
  for (const m of from.medias) {
    // A BUNDLE member's sockets are its owner's: the owner's plan routes its packets.
    if (!m.local || isBundleMember(m)) continue;
    const { sink, rtcpSink, forward } = routeOf(m, to?.medias[m.index - 1]);
    let t = m, payloadTypes = m.payloadTypes, clockRates = m.clockRates ?? null;
    let bundle: BundleRoute[] | null = null, rtcpBundle: BundleRoute[] | null = null, members: MediaState[] | null = null;
    if (m.bundleOwner === m.index) {
      // One socket for several media (RFC 8843): the plane routes by payload type and SSRC.
      members = bundleMembers(from, m);
      bundle = members.map((x) => ({ payloadTypes: x.payloadTypes, ssrcs: x.ssrcs ?? [], ...routeOf(x, to?.medias[x.index - 1]) }));
      rtcpBundle = bundle.map((r) => ({ ...r, sink: r.rtcpSink, rtcpSink: null }));
      payloadTypes = members.flatMap((x) => x.payloadTypes);
      clockRates = members.flatMap((x) => x.clockRates ?? []);
      // The transport (DTLS, SDES, ICE) was negotiated on every accepted member alike; the owner
      // itself may have been rejected by the answer, and then its own state is the offer's.
      t = members.find((x) => !x.rejected && to?.medias[x.index - 1]?.rejected === false) ?? m;
    }
    const { asymmetric, strictSource, mediaHandover } = from.flags;
    // WebRTC (webrtc.ts): SRTP and ICE with this party, RTCP feedback it takes, RTCP we generate.
    const crypto = socketCrypto(t), rtcpFeedback = t.rtcpFeedback ?? true, generateRtcp = t.generateRtcp ?? false;
    const ice1 = members === null ? socketIce(m, 1) : bundleIce(members, t, 1);
    const ice2 = m.rtcpMux ? null : members === null ? socketIce(m, 2) : bundleIce(members, t, 2);
    // Every local address of the interface has its own pair when ICE is used (one host
    // candidate each); they all feed the same sink. Media towards the party leaves the primary.
    // Plain literals of one shape, no `...base` spread: the spread made this function 7.5 % of
    // the daemon's CPU under ngload (--cpu-prof self time).
    const locals = m.localExtra?.length ? [m.local, ...m.localExtra] : [m.local];
    for (const local of locals) {
      plans.push({
        forward, asymmetric, strictSource, mediaHandover, crypto, rtcpFeedback, generateRtcp, clockRates,
        id: local.rtp, kind: 'rtp', remote: m.remoteRtp, sink,
        payloadTypes, rtcpMux: m.rtcpMux, rtcpSink, ice: ice1, bundle,
      });
      plans.push({
        forward, asymmetric, strictSource, mediaHandover, crypto, rtcpFeedback, generateRtcp, clockRates: null,
        id: local.rtcp, kind: 'rtcp', remote: m.rtcpMux ? null : m.remoteRtcp, sink: rtcpSink,
        payloadTypes: [], rtcpMux: false, rtcpSink: null, ice: ice2, bundle: rtcpBundle,
      });
    }
  }
  return plans;
}

function originOf(doc: SdpDoc): { username: string; version: string } | null {
  const o = doc.session.find((l) => l.type === 'o');
  if (!o) return null;
  // split(' ') with at least six fields, fields 0 and 2, without the array of six strings.
  const v = o.value;
  const s1 = v.indexOf(' '), s2 = s1 < 0 ? -1 : v.indexOf(' ', s1 + 1), s3 = s2 < 0 ? -1 : v.indexOf(' ', s2 + 1);
  const s4 = s3 < 0 ? -1 : v.indexOf(' ', s3 + 1), s5 = s4 < 0 ? -1 : v.indexOf(' ', s4 + 1);
  return s5 < 0 ? null : { username: v.slice(0, s1), version: v.slice(s2 + 1, s3) };
}

/**
 * Writes the SDP that `to` receives for what `from` sent, keeping o= version, username and
 * s= stable as `replace` asks. `targets` are the sockets facing `to`.
 */
function writeSdp(
  from: Participant, doc: SdpDoc, targets: (MediaTarget | null)[], opts: OfferAnswerOptions,
  sessionAddr: { address: string; family: 4 | 6 }, groups: SdpLine[],
): string {
  const origin = originOf(doc);
  if (opts.replace.has('username') && from.originUsername === null && origin) from.originUsername = origin.username;
  const sName = doc.session.find((l) => l.type === 's')?.value ?? null;
  if (opts.replace.has('session-name') && from.sessionName === null) from.sessionName = sName;
  const plan: RewritePlan = {
    medias: targets,
    sessionAddress: sessionAddr,
    replace: opts.replace,
    iceMode: opts.ice,
    noRtcpAttribute: opts.flags.has('no-rtcp-attribute'),
    fullRtcpAttribute: opts.flags.has('full-rtcp-attribute'),
    originalSendrecv: opts.flags.has('original-sendrecv'),
    stripExtmap: opts.flags.has('strip-extmap'),
    loopProtect: opts.flags.has('loop-protect') ? LOOP_PROTECT_ID : null,
    iceLite: targets.some((t) => t?.ice && t.ice.lite),
    groups,
    origin: {
      username: opts.replace.has('username') ? from.originUsername : null,
      sessionName: opts.replace.has('session-name') ? from.sessionName : null,
      version: null,
    },
  };
  if (!opts.replace.has('SDP-version')) return serializeSdp(rewriteSdp(doc, plan));
  // SDP-version: the o= version goes up whenever what we write changes, and only then.
  from.originVersion ??= Number(origin?.version ?? 0) || 0;
  plan.origin!.version = String(from.originVersion);
  let out = serializeSdp(rewriteSdp(doc, plan));
  if (from.sdpOut !== null && out !== from.sdpOut) {
    from.originVersion++;
    plan.origin!.version = String(from.originVersion);
    out = serializeSdp(rewriteSdp(doc, plan));
  }
  return out;
}

/**
 * One ICE foundation per local address for the life of the process (RFC 8445 5.1.1.3: same
 * type, base and server give the same foundation), which is also what rtpengine 10.5 writes.
 */
const foundations = new Map<string, string>();
function foundationOf(address: string): string {
  let f = foundations.get(address);
  if (f === undefined) { f = randomAlnum(16); foundations.set(address, f); }
  return f;
}

/** `trickle`: whether to advertise trickle ICE (offer: the trickle-ICE flag; answer: the offerer did). */
function iceWanted(opts: OfferAnswerOptions, hasIce: boolean): boolean {
  return opts.ice === 'force' || opts.ice === 'optional' || (opts.ice === 'default' && hasIce);
}

function iceFor(m: MediaState, local: LocalPair, hasIce: boolean, opts: OfferAnswerOptions, trickle: boolean): MediaTarget['ice'] {
  m.iceUsed = iceWanted(opts, hasIce);
  if (!m.iceUsed) return null;
  m.ice ??= newIceCredentials();
  // The primary address first, then the interface's others in their order (rtpengine 10.5).
  const candidates = [local, ...(m.localExtra ?? [])].map((l) => ({
    foundation: foundationOf(l.address), address: l.advertised, family: l.family, port: l.port, rtcpPort: l.port + 1,
  }));
  return { creds: m.ice, candidates, trickle, lite: m.iceLite === true };
}

function newIceCredentials(): { ufrag: string; pwd: string } {
  return { ufrag: randomAlnum(8), pwd: randomAlnum(26) };
}

/** For ICE media: a socket pair on every other local address of the interface (each a host candidate). */
async function openExtras(ctx: OfferAnswerContext, itf: LogicalInterface, m: MediaState, advertised: string | null, callId: string): Promise<void> {
  if (!m.local) return;
  const have = new Set([m.local.address, ...(m.localExtra ?? []).map((l) => l.address)]);
  for (const addr of itf.addresses) {
    if (have.has(addr.address)) continue;
    (m.localExtra ??= []).push(await openLocal(ctx, addr, advertised, callId));
  }
}

/** Our fingerprint line for `hash`, or null without a certificate. */
function ourFingerprint(ctx: OfferAnswerContext, hash: string): { hash: string; value: string } | null {
  const value = ctx.fingerprint?.(hash) ?? null;
  return value === null ? null : { hash, value };
}

/** Which participant an offer from `a` is aimed at (forks are told apart by via-branch). */
export function offerTarget(call: Call, a: Participant, opts: OfferAnswerOptions): Participant | null {
  if (opts.toTag) {
    const b = call.participants.find((p) => p.tag === opts.toTag && p !== a);
    if (b) return b;
  }
  const linked = call.participants.filter((p) => p !== a && (p.peerId === a.id || a.peerId === p.id));
  if (opts.viaBranch !== null) return linked.find((p) => p.viaBranch === opts.viaBranch) ?? null;
  return (a.peerId !== null ? call.participants.find((p) => p.id === a.peerId) : undefined) ?? linked[0] ?? null;
}

export async function applyOffer(ctx: OfferAnswerContext, call: Call, opts: OfferAnswerOptions): Promise<string> {
  const { doc, info } = parse(opts.sdp);
  let a = call.participants.find((p) => p.tag === opts.fromTag);
  const aItf = findInterface(ctx, opts.interfaces[0], a?.interfaceName ?? null);
  a ??= newParticipant(call, opts.fromTag, null, ctx.nowMs, aItf.name);
  a.interfaceName = aItf.name;
  let b = offerTarget(call, a, opts);
  const bItf = findInterface(ctx, opts.interfaces[1], b?.interfaceName ?? null);
  b ??= newParticipant(call, opts.toTag ?? '', opts.viaBranch, ctx.nowMs, bItf.name);
  b.interfaceName = bItf.name;
  if (opts.label !== null) a.label = opts.label;
  a.flags = {
    asymmetric: opts.flags.has('asymmetric'), strictSource: opts.flags.has('strict-source'),
    mediaHandover: opts.flags.has('media-handover'), portLatching: opts.flags.has('port-latching'),
  };
  a.peerId = b.id;
  b.peerId ??= a.id;

  const w = opts.webrtc ?? DEFAULT_WEBRTC;
  // BUNDLE from a WebRTC offerer (bundle.ts): its bundled media share the first mid's sockets.
  // A rejected section (port 0, not bundle-only) keeps what it had: it may name shared sockets.
  const bundle = offeredBundle(doc, info);
  for (const mi of info) {
    const am = a.medias[mi.index] ??= emptyMedia(mi);
    const owner = bundle.get(mi.index);
    if (mi.port !== 0 || owner !== undefined) joinBundle(am, owner === undefined ? null : owner + 1, ctx.retired);
  }
  const targets: (MediaTarget | null)[] = [];
  for (const mi of info) {
    const am = a.medias[mi.index] ??= emptyMedia(mi);
    const bm = b.medias[mi.index] ??= emptyMedia(mi);
    const moved = takeRemote(ctx, opts, am, mi, mi.port === 0 && bundle.has(mi.index));
    takeSecurity(am, mediaSecurity(doc, mi.index), mi.proto);
    am.mid = midOf(doc, mi.index);
    am.ssrcs = ssrcsOf(doc, mi.index);
    if (am.rejected) { targets.push(null); continue; }
    const aFamily = mi.connection?.family ?? null;
    if (isBundleMember(am)) {
      bundleOwnerOf(a, am).local ??= await openLocal(ctx, pickAddress(aItf, aFamily), null, call.callId);
      shareTransport(a, am, newIceCredentials);
    } else am.local ??= await openLocal(ctx, pickAddress(aItf, aFamily), null, call.callId);
    const bAddr = pickAddress(bItf, opts.addressFamily ?? aFamily);
    if (isBundleMember(bm)) {
      // Towards a bundled party (a re-offer to a browser): the owner's transport, as it was.
      const o = bundleOwnerOf(b, bm);
      o.local ??= await openLocal(ctx, bAddr, opts.mediaAddress, call.callId);
      if (iceWanted(opts, mi.hasIce)) await openExtras(ctx, bItf, o, opts.mediaAddress, call.callId);
      shareTransport(b, bm, newIceCredentials);
    } else {
      // A party that moved gets new ports on the other side, unless port-latching (rtpengine 10.5).
      // Never a BUNDLE transport: the browser would have to restart ICE on all its media for it.
      if (bm.local && moved && !a.flags.portLatching && a.sdpIn !== null && bm.bundleOwner == null) {
        ctx.retired.push(...[bm.local, ...(bm.localExtra ?? [])].flatMap((l) => [l.rtp, l.rtcp]));
        bm.local = null;
        bm.localExtra = [];
      }
      bm.local ??= await openLocal(ctx, bAddr, opts.mediaAddress, call.callId);
      if (iceWanted(opts, mi.hasIce)) await openExtras(ctx, bItf, bm, opts.mediaAddress, call.callId);
    }
    // WebRTC state fixed by the offer: fingerprint hash (kept once chosen, as 10.5 does),
    // ICE-lite per direction, DTLS-reverse, generate-RTCP.
    am.dtlsHash ??= w.dtlsFingerprint ?? 'sha-256';
    bm.dtlsHash ??= w.dtlsFingerprint ?? 'sha-256';
    bm.iceLite = w.iceLite === 'forward' || w.iceLite === 'both';
    am.iceLite = w.iceLite === 'backward' || w.iceLite === 'both';
    am.dtlsReverse = w.dtlsReverse;
    am.sdesNo = w.sdesNo;
    if (w.generateRtcp !== null) { am.generateRtcp = w.generateRtcp; bm.generateRtcp = w.generateRtcp; }
    am.iceControlling = am.remoteIce?.lite === true && !am.iceLite ? true : false;
    bm.iceControlling = !bm.iceLite;
    bm.type = am.type;
    am.rtcpMuxReject = opts.rtcpMux.has('reject');
    const mux = am.remoteRtp !== null && mi.rtcpMux;
    const wantMux = (mux && !opts.rtcpMux.has('demux')) || opts.rtcpMux.has('offer') || opts.rtcpMux.has('require');
    const proto = opts.transportProtocol ?? mi.proto;
    const sec = offerCrypto(am, bm, proto, opts.transportProtocol !== null, w);
    const fp = ourFingerprint(ctx, bm.dtlsHash);
    if (fp === null) bm.dtlsSetup = null;
    const bLocal = bm.local!;
    targets.push({
      address: bLocal.advertised, family: bLocal.family, port: bLocal.port, rtcpPort: bLocal.port + 1,
      rtcpMux: wantMux, muxOnly: opts.rtcpMux.has('require'), proto,
      payloadTypes: offeredPayloadTypes(mi, opts.codec), direction: am.direction,
      // A bundled party hears its own mids back: the group names them.
      mid: bm.bundleOwner != null ? bm.mid : opts.flags.has('generate-mid') ? String(mi.index + 1) : null,
      midFixed: bm.bundleOwner != null && bm.mid !== null,
      ice: iceFor(bm, bLocal, mi.hasIce, opts, opts.flags.has('trickle-ICE')),
      ptime: opts.ptime ?? mi.ptime,
      fmtpFallback: new Map(),
      security: cryptoLines(sec, fp),
      // Deliberately unlike 10.5: AVPF converted to AVP loses a=rtcp-fb (AVP has no feedback).
      rtcpFeedback: !(isFeedbackProto(mi.proto) && !isFeedbackProto(proto)),
      bundleOnly: mi.port === 0,
    });
  }
  for (const am of a.medias) if (am && isBundleMember(am)) inheritTransport(am, bundleOwnerOf(a, am));
  const first = targets.find((t) => t !== null);
  const sessionAddr = first ? { address: first.address, family: first.family } : { address: pickAddress(bItf, null).advertised, family: pickAddress(bItf, null).family };
  const out = writeSdp(a, doc, targets, opts, sessionAddr, bundleGroupLines(b.medias, targets.map((t) => t !== null)));
  a.sdpIn = opts.sdp;
  a.sdpOut = out;
  // What the answerer was offered, straight from the plan: rtcp-mux is written iff the target says
  // so, the m= line lists the target's payload types (a rejected section keeps its own).
  const outMedias = out.length > MAX_SDP_BYTES ? null : targets.map((t, i): OutMedia => (t !== null
    ? { pts: t.payloadTypes.map(Number), rtcpMux: t.rtcpMux }
    : { pts: doc.media[i]!.fmts.map(Number), rtcpMux: false }));
  keepOfferParse(a, { sdpIn: opts.sdp, parsed: { doc, info }, sdpOut: out, outMedias });
  if (!ctx.callerInstalls) ctx.plane.install([...forwardPlans(a, b), ...forwardPlans(b, a)]);
  return out;
}

/** Which participant an answer comes from: by to-tag, else the fork on its via-branch, else the peer. */
function answerSource(call: Call, a: Participant, opts: OfferAnswerOptions): Participant | null {
  const toTag = opts.toTag!;
  const byTag = call.participants.find((p) => p.tag === toTag && p !== a);
  if (byTag) return byTag;
  const linked = call.participants.filter((p) => p !== a && (p.peerId === a.id || a.peerId === p.id));
  if (opts.viaBranch !== null) {
    const fork = linked.find((p) => p.viaBranch === opts.viaBranch);
    if (fork) return fork;
  }
  return linked.find((p) => p.tag === '') ?? (a.peerId !== null ? call.participants.find((p) => p.id === a.peerId) ?? null : null);
}

export async function applyAnswer(ctx: OfferAnswerContext, call: Call, opts: OfferAnswerOptions): Promise<string> {
  const { doc, info } = parse(opts.sdp);
  const a = call.participants.find((p) => p.tag === opts.fromTag);
  if (!a) throw new SessionError('BAD_DIALOGUE', 'answer for an unknown from-tag');
  const b = answerSource(call, a, opts);
  if (!b) throw new SessionError('BAD_DIALOGUE', 'answer matches no offer');
  // The second of two answers with different to-tags on one branch re-tags it (early media).
  b.tag = opts.toTag!;
  a.peerId = b.id;
  b.peerId = a.id;
  b.flags = {
    asymmetric: opts.flags.has('asymmetric'), strictSource: opts.flags.has('strict-source'),
    mediaHandover: opts.flags.has('media-handover'), portLatching: opts.flags.has('port-latching'),
  };
  const offer = lastOffer(a);
  const aItf = findInterface(ctx, null, a.interfaceName);
  const w = opts.webrtc ?? DEFAULT_WEBRTC;
  const targets: (MediaTarget | null)[] = [];
  for (const mi of info) {
    const am = a.medias[mi.index];
    const bm = b.medias[mi.index];
    if (!am || !bm) throw new SessionError('BAD_DIALOGUE', 'answer has more media than the offer');
    // A BUNDLE member's transport (ICE, trickle, mux) is what the offerer said for the owner (RFC 8843 7.5.2).
    const offered = offer.medias[mi.index];
    const tOffered = isBundleMember(am) ? offer.medias[am.bundleOwner! - 1] ?? offered : offered;
    const moved = takeRemote(ctx, opts, bm, mi);
    takeSecurity(bm, mediaSecurity(doc, mi.index), mi.proto);
    bm.ssrcs = ssrcsOf(doc, mi.index);
    if (w.generateRtcp !== null) { am.generateRtcp = w.generateRtcp; bm.generateRtcp = w.generateRtcp; }
    if (bm.rejected || !am.local || !bm.local) { targets.push(null); continue; }
    if (isBundleMember(am)) {
      // The offerer's BUNDLE transport (bundle.ts): the owner's sockets on every address, its ICE.
      const o = bundleOwnerOf(a, am);
      if (o.local && iceWanted(opts, tOffered?.in.hasIce ?? mi.hasIce)) {
        const own = aItf.addresses.find((x) => x.address === o.local!.address);
        await openExtras(ctx, aItf, o, own && own.advertised !== o.local.advertised ? o.local.advertised : null, call.callId);
      }
      shareTransport(a, am, newIceCredentials);
    } else {
      // As in an offer: an answerer that moved gets new ports towards the offerer (rtpengine 10.5);
      // never a BUNDLE transport (the browser would have to restart ICE).
      if (moved && !b.flags.portLatching && b.sdpIn !== null && am.bundleOwner == null) {
        ctx.retired.push(am.local.rtp, am.local.rtcp);
        // Same address and advertised address (media-address) as before, new port.
        ctx.retired.push(...(am.localExtra ?? []).flatMap((l) => [l.rtp, l.rtcp]));
        am.localExtra = [];
        am.local = await openLocal(ctx, pickAddress(aItf, am.local.family), am.local.advertised, call.callId);
      }
      if (iceWanted(opts, offered?.in.hasIce ?? mi.hasIce)) {
        // media-address given with the offer is the one advertised address of every socket.
        const own = aItf.addresses.find((x) => x.address === am.local!.address);
        await openExtras(ctx, aItf, am, own && own.advertised !== am.local.advertised ? am.local.advertised : null, call.callId);
      }
    }
    // The offerer gets mux back when it offered it and did not refuse it with `reject`, and
    // the answerer took it, or we took it off towards the answerer (`demux`).
    const aMux = tOffered !== undefined && tOffered.in.rtcpMux && !opts.rtcpMux.has('reject') && am.rtcpMuxReject !== true
      && (mi.rtcpMux || !tOffered.out.rtcpMux);
    bm.rtcpMux = mi.rtcpMux;
    am.rtcpMux = aMux;
    const proto = a.medias[mi.index]!.protocol;
    const sec = answerCrypto(am, bm, w);
    const fp = ourFingerprint(ctx, am.dtlsHash ?? 'sha-256');
    if (fp === null) am.dtlsSetup = null;
    // Only what the answerer was offered goes back (rtpengine drops the rest).
    const offeredPts = new Set(offered?.out.pts.map(String) ?? []);
    const answered = mi.codecs.map((c) => String(c.pt));
    const kept = answered.filter((pt) => offeredPts.has(pt));
    targets.push({
      address: am.local.advertised, family: am.local.family, port: am.local.port, rtcpPort: am.local.port + 1,
      rtcpMux: aMux, muxOnly: aMux, proto,
      payloadTypes: kept.length ? kept : answered, direction: bm.direction,
      mid: am.mid,
      // The offerer hears back its own mid; an answerer's mid for an offerer without one goes (10.5).
      midFixed: true,
      // ICE towards the offerer follows what the offerer's SDP had.
      ice: iceFor(am, am.local, tOffered?.in.hasIce ?? mi.hasIce, opts, tOffered?.trickle ?? false),
      // The offerer hears its own packet time back (rtpengine 10.5), else the answerer's.
      ptime: offered?.in.ptime ?? mi.ptime,
      fmtpFallback: offered?.codecsChanged ? offered.fmtp : new Map(),
      security: cryptoLines(sec, fp),
      rtcpFeedback: !(isFeedbackProto(mi.proto) && !isFeedbackProto(proto)),
    });
  }
  const first = targets.find((t) => t !== null);
  const sessionAddr = first ? { address: first.address, family: first.family } : { address: pickAddress(aItf, null).advertised, family: pickAddress(aItf, null).family };
  // Towards a bundling offerer: a=group:BUNDLE with the mids the answer accepted (RFC 8843 7.3).
  const out = writeSdp(b, doc, targets, opts, sessionAddr, bundleGroupLines(a.medias, targets.map((t) => t !== null)));
  b.sdpIn = opts.sdp;
  b.sdpOut = out;
  call.answeredMs ??= ctx.nowMs;
  // Other forks of the same offer keep sending early media to the caller until deleted; the
  // caller's media now goes to this branch only.
  if (!ctx.callerInstalls) ctx.plane.install([...forwardPlans(a, b), ...forwardPlans(b, a)]);
  return out;
}

/** What the offerer's last SDP said, and what we made of it, per media section. */
interface OfferedMedia {
  in: MediaInfo;
  out: OutMedia;
  /** We changed the codec list (strip, mask …): answers then inherit the offer's a=fmtp (rtpengine 10.5). */
  codecsChanged: boolean;
  fmtp: Map<string, SdpLine[]>;
  /** The offerer advertised trickle ICE (a=ice-options:trickle). */
  trickle: boolean;
}

/** Of the SDP we wrote towards the answerer, per media section: what lastOffer's users read. */
interface OutMedia { pts: number[]; rtcpMux: boolean }

/**
 * The offer's own parse, kept beside the participant (not in the call state: a snapshot or a
 * rollback drops it, and a changed sdpIn misses it), so the answer does not parse the same SDP
 * again (lastOffer's two parses were 2.5 % of the daemon's CPU under ngload). Likewise what we
 * wrote (`outMedias`, for that very `sdpOut`): parsing our own output back was 4 % of the
 * in-process CPU per command (ng-cpu --plane=stub profile). A too large output, which the parse
 * would refuse, is not kept.
 */
interface OfferParse { sdpIn: string; parsed: { doc: SdpDoc; info: MediaInfo[] }; sdpOut: string; outMedias: OutMedia[] | null }

/**
 * On the participant itself, under a symbol and not enumerable: spreads, structuredClone and JSON
 * leave it out, so the call state stays plain data and its copies start without it. Not in a
 * WeakMap: V8's young-generation collector holds a long-lived WeakMap's values as roots until
 * the next full collection, so every offer's parse outlived its call and was promoted (~1 KB
 * per NG command of the ~1.2 KB that still reached the old generation, ng-cpu --plane=stub).
 */
const OFFER_PARSE = Symbol('offerParse');

function keepOfferParse(a: Participant, kept: OfferParse): void {
  const holder = a as Participant & { [OFFER_PARSE]?: OfferParse };
  if (Object.hasOwn(holder, OFFER_PARSE)) holder[OFFER_PARSE] = kept;
  else Object.defineProperty(holder, OFFER_PARSE, { value: kept, writable: true, configurable: true, enumerable: false });
}

function offerParseOf(a: Participant): OfferParse | undefined {
  return (a as Participant & { [OFFER_PARSE]?: OfferParse })[OFFER_PARSE];
}

function outMediasOf(info: MediaInfo[]): OutMedia[] {
  return info.map((m) => ({ pts: m.codecs.map((c) => c.pt), rtcpMux: m.rtcpMux }));
}

/** `codecs.map((c) => c.pt).join() === pts.join()` without the strings (NaN equals NaN, as its text does). */
function samePts(codecs: readonly { pt: number }[], pts: readonly number[]): boolean {
  if (codecs.length !== pts.length) return false;
  for (let i = 0; i < pts.length; i++) {
    const a = codecs[i]!.pt, b = pts[i]!;
    if (a !== b && !(Number.isNaN(a) && Number.isNaN(b))) return false;
  }
  return true;
}

function lastOffer(a: Participant): { medias: OfferedMedia[] } {
  if (a.sdpIn === null || a.sdpOut === null) return { medias: [] };
  const kept = offerParseOf(a);
  const inp = kept !== undefined && kept.sdpIn === a.sdpIn ? kept.parsed : parse(a.sdpIn);
  const out = kept !== undefined && kept.sdpOut === a.sdpOut && kept.outMedias !== null
    ? kept.outMedias : outMediasOf(parse(a.sdpOut).info);
  return {
    medias: inp.info.map((mi, i) => {
      const fmtp = new Map<string, SdpLine[]>();
      let trickle = false;
      for (const l of inp.doc.media[i]!.lines) {
        if (isAttr(l, 'ice-options')) {
          if (attrValue(l).split(' ').includes('trickle')) trickle = true;
          continue;
        }
        if (!isAttr(l, 'fmtp')) continue;
        // attrValue(l).split(' ')[0], without the array; the list grown in place (it is new here).
        const v = l.value, sp = v.indexOf(' ', 5);
        const pt = v.length === 4 ? '' : v.slice(5, sp < 0 ? v.length : sp);
        const had = fmtp.get(pt);
        if (had === undefined) fmtp.set(pt, [l]); else had.push(l);
      }
      const o = out[i] ?? outMediasOf([mi])[0]!;
      return { in: mi, out: o, codecsChanged: !samePts(mi.codecs, o.pts), fmtp, trickle };
    }),
  };
}
