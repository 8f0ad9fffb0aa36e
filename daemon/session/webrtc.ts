// WebRTC ↔ legacy negotiation for one media section: what a party's SDP says about its ICE,
// SDES and DTLS, what we write back (rtpengine 10.5's rules, checked by the differential
// scenarios webrtc-*, sdes-*, dtls-*, osrtp-*, ice-lite-*), and the media plane's crypto/ICE
// fields derived from it. Pure functions over the plain call state; no sockets, no NG.
import type { IceCandidate, SocketCrypto, SocketIce, SrtpKeys } from '../../media/plane.js';
import type { MediaState, RemoteIce, WebrtcOptions } from './model.js';
import type { SdpDoc, SdpLine } from './sdp.js';
import { formatCrypto, parseCrypto, sdesAnswer, sdesOffer, sdesPolicy } from './sdes.js';

export const DEFAULT_WEBRTC: WebrtcOptions = {
  dtls: 'default', dtlsReverse: null, dtlsFingerprint: null, sdesOff: false, sdesNo: [], sdesOnly: [],
  sdesPad: false, sdesLifetime: false, sdesParams: [], osrtpOffer: false, osrtpAccept: false, iceLite: 'off',
  generateRtcp: null,
};

/** SAVP, SAVPF, UDP/TLS/RTP/SAVP(F): the profile itself says the media is SRTP. */
export function isSecureProto(proto: string): boolean { return /SAVP/.test(proto); }
/** AVPF profiles carry RTCP feedback (RFC 4585). */
export function isFeedbackProto(proto: string): boolean { return /AVPF$/.test(proto); }

/** What one party's SDP section says about its transport security and ICE. */
export interface MediaSecurity {
  crypto: string[];
  fingerprint: { hash: string; value: string } | null;
  setup: string | null;
  ice: RemoteIce | null;
  rtcpFeedback: boolean;
}

const CANDIDATE = /^(\S+) ([12]) (\S+) (\d+) (\S+) (\d+) typ (host|srflx|prflx|relay)\b/;

/** The first values of the attributes mediaSecurity reads once per section and once per session. */
interface SecurityAttrs { fingerprint: string | null; setup: string | null; ufrag: string | null; pwd: string | null }

/** The value after `name:` when `v` is that attribute (attrName(l) === name), else null. */
function valueOf(v: string, name: string): string | null {
  if (!v.startsWith(name)) return null;
  if (v.length === name.length) return '';
  return v.charCodeAt(name.length) === 0x3a ? v.slice(name.length + 1) : null;
}

/**
 * One pass over the lines (each attribute's first value, and with `all` the candidate, crypto
 * and rtcp-fb lines): the eight filter/map passes this replaced were ~1.5 % of the in-process
 * CPU per command (ng-cpu --plane=stub profile).
 */
function readSecurity(lines: readonly SdpLine[], all: { candidates: string[]; crypto: string[]; rtcpFb: boolean; lite: boolean } | null): SecurityAttrs {
  const out: SecurityAttrs = { fingerprint: null, setup: null, ufrag: null, pwd: null };
  for (const l of lines) {
    if (l.type !== 'a') continue;
    const v = l.value;
    let x: string | null;
    switch (v.charCodeAt(0)) {
      case 0x66: if (out.fingerprint === null && (x = valueOf(v, 'fingerprint')) !== null) out.fingerprint = x; break;
      case 0x73: if (out.setup === null && (x = valueOf(v, 'setup')) !== null) out.setup = x; break;
      case 0x69:
        if (all !== null && v === 'ice-lite') all.lite = true;
        else if (out.ufrag === null && (x = valueOf(v, 'ice-ufrag')) !== null) out.ufrag = x;
        else if (out.pwd === null && (x = valueOf(v, 'ice-pwd')) !== null) out.pwd = x;
        break;
      case 0x63:
        if (all === null) break;
        if ((x = valueOf(v, 'candidate')) !== null) all.candidates.push(x);
        else if ((x = valueOf(v, 'crypto')) !== null) all.crypto.push(x);
        break;
      case 0x72:
        if (all !== null && v.startsWith('rtcp-fb') && (v.length === 7 || v.charCodeAt(7) === 0x3a)) all.rtcpFb = true;
        break;
    }
  }
  return out;
}

/** Reads one media section (session-level fingerprint, setup and ICE credentials as fallbacks). */
export function mediaSecurity(doc: SdpDoc, index: number): MediaSecurity {
  const m = doc.media[index]!;
  const all = { candidates: [] as string[], crypto: [] as string[], rtcpFb: false, lite: false };
  const own = readSecurity(m.lines, all);
  // Session-level ones only where the section has none; a=ice-lite only at session level.
  const session = { candidates: [] as string[], crypto: [] as string[], rtcpFb: false, lite: false };
  const ses = readSecurity(doc.session, session);
  const fp = own.fingerprint ?? ses.fingerprint;
  const fpm = fp === null ? null : /^(\S+) (\S+)$/.exec(fp.trim());
  const candidates: RemoteIce['candidates'] = [];
  for (const v of all.candidates) {
    const c = CANDIDATE.exec(v);
    if (!c || c[3]!.toUpperCase() !== 'UDP') continue; // ICE-TCP is not relayed
    candidates.push({
      foundation: c[1]!, component: Number(c[2]) as 1 | 2, priority: Number(c[4]), address: c[5]!, port: Number(c[6]),
      type: c[7] as RemoteIce['candidates'][number]['type'],
    });
  }
  const ufrag = own.ufrag ?? ses.ufrag;
  const pwd = own.pwd ?? ses.pwd;
  const lite = session.lite;
  return {
    crypto: all.crypto,
    fingerprint: fpm ? { hash: fpm[1]!.toLowerCase(), value: fpm[2]! } : null,
    setup: own.setup ?? ses.setup,
    ice: ufrag !== null || candidates.length ? { ufrag, pwd, lite, candidates } : null,
    rtcpFeedback: all.rtcpFb,
  };
}

/** Remembers what a party wrote (its media state): ICE, crypto, DTLS, feedback. */
export function takeSecurity(m: MediaState, sec: MediaSecurity, proto: string): void {
  m.remoteIce = sec.ice;
  m.cryptoIn = sec.crypto;
  m.remoteFingerprint = sec.fingerprint;
  m.remoteSetup = sec.setup;
  m.rtcpFeedback = isFeedbackProto(proto) || sec.rtcpFeedback;
  // A browser (UDP/TLS/RTP/SAVPF) gets RTCP reports from our statistics while its peer sends none
  // (a plain phone often sends none), so its quality stats and bandwidth estimation work. Only the
  // first time its media is seen: an explicit generate-RTCP on/off (set after this) overrides it.
  if (m.generateRtcp === undefined && proto === 'UDP/TLS/RTP/SAVPF') m.generateRtcp = true;
}

/** The crypto attributes to write into one media section (a=crypto values, a=setup). */
export interface CryptoOut {
  crypto: string[];
  setup: 'actpass' | 'active' | 'passive' | null;
}

const fmt = (w: WebrtcOptions): { pad: boolean; lifetime: boolean } => ({ pad: w.sdesPad, lifetime: w.sdesLifetime });

/**
 * An offer from `a` (its section read into `am`) written towards `b`:
 * - SRTP is offered when the outgoing profile is SAVP-ish, or (without transport-protocol) the
 *   offerer's was or it wrote a=crypto (OSRTP), or OSRTP=offer;
 * - SDES: the offerer's own lines pass through, then our keys for every other suite (tags go on
 *   from the highest offered) unless SDES-off; DTLS: a=setup:actpass unless DTLS=off.
 */
export function offerCrypto(am: MediaState, bm: MediaState, outProto: string, explicitProto: boolean, w: WebrtcOptions): CryptoOut {
  const inCrypto = am.cryptoIn ?? [];
  const secure = isSecureProto(outProto) || w.osrtpOffer
    || (!explicitProto && (isSecureProto(am.protocol) || inCrypto.length > 0));
  if (!secure) { bm.cryptoOut = []; bm.dtlsSetup = null; return { crypto: [], setup: null }; }
  let crypto: string[] = [];
  if (!w.sdesOff) {
    const parsed = inCrypto.map(parseCrypto);
    const taken = new Set(parsed.flatMap((c) => (c ? [c.suite.name] : [])));
    const maxTag = Math.max(0, ...parsed.map((c) => c?.tag ?? 0));
    // 10.5 warns about SDES-only and ignores it; so do we (differential sdes-offer-flags-only).
    const ours = sdesOffer({ no: [...w.sdesNo, ...taken] }, w.sdesParams)
      .map((c, i) => formatCrypto({ ...c, tag: maxTag + i + 1 }, fmt(w)));
    // Keep what we generated for this media once (a repeated offer writes the same keys).
    const previous = (bm.cryptoOut ?? []).filter((l) => !inCrypto.includes(l));
    const same = previous.length === ours.length && previous.every((l, i) => sameSuiteAndTag(l, ours[i]!));
    crypto = [...inCrypto.filter((l, i) => parsed[i] !== null), ...(same ? previous : ours)];
  }
  bm.cryptoOut = crypto;
  bm.dtlsSetup = w.dtls === 'off' ? null : 'actpass';
  return { crypto, setup: bm.dtlsSetup };
}

function sameSuiteAndTag(a: string, b: string): boolean {
  const f = (l: string): string => l.split(' ').slice(0, 2).join(' ');
  return f(a) === f(b);
}

/**
 * The answer from `b` written towards the offerer `a`; sets both sides' negotiated SDES and DTLS.
 * `offerW`: the options of the offer (DTLS-reverse), `w`: the answer's (DTLS=passive).
 */
export function answerCrypto(am: MediaState, bm: MediaState, w: WebrtcOptions): CryptoOut {
  am.sdes = null; bm.sdes = null; am.srtpPassthrough = false; bm.srtpPassthrough = false;
  // The answerer's side: DTLS if it answered a fingerprint, else the SDES line it picked.
  const bCrypto = (bm.cryptoIn ?? []).map(parseCrypto).find((c) => c !== null) ?? null;
  const bLine = bCrypto ? (bm.cryptoIn ?? []).find((l) => parseCrypto(l)?.tag === bCrypto.tag)! : null;
  let passthrough: string | null = null;
  if (bm.remoteFingerprint && bm.dtlsSetup) {
    bm.dtlsSetup = bm.remoteSetup === 'passive' ? 'active' : 'passive';
  } else if (bCrypto && bLine) {
    bm.dtlsSetup = null;
    const ours = (bm.cryptoOut ?? []).find((l) => parseCrypto(l)?.tag === bCrypto.tag) ?? null;
    if (ours !== null && (am.cryptoIn ?? []).includes(ours)) passthrough = bLine; // the offerer's own key went through
    else if (ours !== null) bm.sdes = { rx: bLine, tx: ours };
  } else {
    bm.dtlsSetup = null;
  }
  // The offerer's side.
  if (passthrough !== null) {
    am.srtpPassthrough = true; bm.srtpPassthrough = true; am.dtlsSetup = null;
    return { crypto: [passthrough], setup: null };
  }
  if (am.remoteFingerprint && isSecureProto(am.protocol) && w.dtls !== 'off') {
    const theirs = am.remoteSetup ?? 'actpass';
    am.dtlsSetup = theirs === 'active' ? 'passive' : theirs === 'passive' ? 'active'
      : w.dtls === 'passive' || am.dtlsReverse === 'passive' ? 'passive' : 'active';
    return { crypto: [], setup: am.dtlsSetup };
  }
  am.dtlsSetup = null;
  if (am.cryptoIn?.length && isSecureProto(am.protocol) && !w.sdesOff) {
    const chosen = sdesAnswer(am.cryptoIn.map(parseCrypto).filter((c) => c !== null), { no: [...w.sdesNo, ...(am.sdesNo ?? [])] });
    if (chosen) {
      const rx = am.cryptoIn.find((l) => parseCrypto(l)?.tag === chosen.offer.tag)!;
      const tx = formatCrypto(chosen.answer, fmt(w));
      am.sdes = { rx, tx };
      return { crypto: [tx], setup: null };
    }
  }
  return { crypto: [], setup: null };
}

function keys(line: string): SrtpKeys | null {
  const c = parseCrypto(line);
  if (!c) return null;
  return { suite: c.suite.name, key: c.keys[0]!.key.toString('base64'), salt: c.keys[0]!.salt.toString('base64') };
}

/** SocketPlan.crypto for the sockets facing the party whose media this is. */
export function socketCrypto(m: MediaState): SocketCrypto | null {
  if (m.srtpPassthrough) return null;
  if (m.dtlsSetup === 'active' || m.dtlsSetup === 'passive') {
    return { sdes: null, dtls: { role: m.dtlsSetup === 'active' ? 'client' : 'server', fingerprint: m.remoteFingerprint ?? null } };
  }
  if (m.sdes) {
    const rx = keys(m.sdes.rx);
    const tx = keys(m.sdes.tx);
    if (!rx || !tx) return null;
    const policy = sdesPolicy(parseCrypto(m.sdes.rx)!);
    return {
      sdes: { rx, tx, unencryptedSrtp: !policy.encryptRtp, unencryptedSrtcp: !policy.encryptRtcp, unauthenticatedSrtp: !policy.authRtp },
      dtls: null,
    };
  }
  return null;
}

/**
 * SocketPlan.ice for the sockets facing the party, component 1 (RTP) or 2 (RTCP). The offerer
 * controls (RFC 8445 6.1.1), so we control towards the answerer and not towards the offerer,
 * except that a lite agent never controls (offer-answer.ts sets `iceControlling`).
 */
export function socketIce(m: MediaState, component: 1 | 2): SocketIce | null {
  if (!m.iceUsed || !m.ice) return null;
  const remote = m.remoteIce ?? null;
  const lite = m.iceLite === true;
  const controlling = !lite && m.iceControlling === true;
  const candidates: IceCandidate[] = (remote?.candidates ?? []).filter((c) => c.component === component);
  return {
    localUfrag: m.ice.ufrag, localPwd: m.ice.pwd, remoteUfrag: remote?.ufrag ?? null, remotePwd: remote?.pwd ?? null,
    controlling, lite, candidates,
  };
}

/** The a= lines for crypto and DTLS, in rtpengine's order (a=crypto…, a=setup, a=fingerprint). */
export function cryptoLines(out: CryptoOut, fingerprint: { hash: string; value: string } | null): SdpLine[] {
  const lines: SdpLine[] = out.crypto.map((c) => ({ type: 'a', value: `crypto:${c}` }));
  if (out.setup !== null && fingerprint !== null) {
    lines.push({ type: 'a', value: `setup:${out.setup}` }, { type: 'a', value: `fingerprint:${fingerprint.hash} ${fingerprint.value}` });
  }
  return lines;
}
