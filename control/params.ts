// NG dictionary → typed parameters. The only place that knows the wire spellings of keys and
// flags ('from-tag' → fromTag, 'trust address' → trust-address, …).
import type { DeleteOptions, OfferAnswerOptions, QueryOptions, WebrtcOptions } from '../daemon/session/model.js';
import type { RecordingOptions } from '../daemon/session/model.js';
import type { IceMode } from '../daemon/session/rewrite.js';
import { isAscii, type NgDict, type NgValue } from './codec.js';
import { NgError } from './errors.js';

/**
 * Keys are matched without regard to case, and with spaces and hyphens alike, so
 * `call ID`, `call-id` and `Call-ID` are one key (rtpengine accepts these aliases).
 */
export function normalizeKeys(dict: NgDict): Map<string, NgValue> {
  const m = new Map<string, NgValue>();
  for (const k in dict) {
    const key = normalKey(k);
    if (!m.has(key)) m.set(key, dict[k]!); // the first spelling wins, as the first of duplicate keys does
  }
  return m;
}

/**
 * Keys already in normal form (a-z, 0-9, '-'), as proxies send them, are kept: toLowerCase +
 * replace cost ~1.5 µs per command. Checked by a loop over the few chars rather than the regex
 * /^[a-z0-9-]*$/ (a call into the regex engine per key).
 */
function normalKey(k: string): string {
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i);
    if ((c < 0x61 || c > 0x7a) && (c < 0x30 || c > 0x39) && c !== 0x2d) return k.toLowerCase().replace(/[ _]/g, '-');
  }
  return k;
}

export class Params {
  readonly keys: Map<string, NgValue>;
  constructor(readonly dict: NgDict) { this.keys = normalizeKeys(dict); }

  /**
   * A string value, decoded as UTF-8. Any other type counts as absent, as in rtpengine: an integer
   * or list where a call-id or tag belongs gives "No call-id in message", not a string "5".
   */
  str(key: string): string | null {
    const v = this.keys.get(key);
    if (typeof v === 'string') return v;
    if (Buffer.isBuffer(v)) return v.toString('utf8');
    return null;
  }

  /**
   * Text whose bytes must come back unchanged (SDP): bytes are read as Latin-1, one char per byte,
   * so a non-UTF-8 `s=` line passes through as rtpengine passes it. `bytesOut` reverses this.
   * A JSON request's string stays as it is.
   */
  text(key: string): string | null {
    const v = this.keys.get(key);
    if (Buffer.isBuffer(v)) return v.toString('latin1');
    return typeof v === 'string' ? v : null;
  }

  /** `text()`'s inverse for a reply: bytes if the request sent bytes under `key`. */
  bytesOut(key: string, s: string): NgValue {
    // An ASCII string encodes to the same bytes as its Latin-1 Buffer (bencode and JSON alike),
    // without two copies of the SDP (Buffer.from here, latin1 back in the encoder).
    return Buffer.isBuffer(this.keys.get(key)) && !isAscii(s) ? Buffer.from(s, 'latin1') : s;
  }

  int(key: string): number | null {
    const v = this.keys.get(key);
    if (typeof v === 'number') return v;
    const s = this.str(key);
    if (s === null || !/^-?\d+$/.test(s.trim())) return null;
    return Number(s);
  }

  /** The string items of a list; rtpengine ignores a flag list given as anything but a list. */
  list(key: string): string[] {
    const v = this.keys.get(key);
    if (!Array.isArray(v)) return [];
    return v.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : typeof x === 'string' ? x : '')).filter((x) => x !== '');
  }

  sub(key: string): Params | null {
    const v = this.keys.get(key);
    if (v && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)) return new Params(v as NgDict);
    return null;
  }

  require(key: string, reason: string): string {
    const s = this.str(key);
    if (s === null || s === '') throw new NgError(reason);
    return s;
  }
}

const KNOWN_FLAGS = [
  'trust-address', 'SIP-source-address', 'asymmetric', 'unidirectional', 'strict-source', 'media-handover',
  'port-latching', 'no-port-latching', 'reset', 'record-call', 'no-rtcp-attribute', 'full-rtcp-attribute',
  'loop-protect', 'always-transcode', 'single-codec', 'reuse-codecs', 'no-codec-renegotiation', 'allow-transcoding',
  'original-sendrecv', 'inject-DTMF', 'detect-DTMF', 'generate-RTCP', 'RTCP-mirror', 'generate-mid', 'strip-extmap',
  'trickle-ICE', 'reject-ICE', 'ICE-reject', 'pierce-NAT', 'NAT-wait', 'debug', 'debugging', 'pad-crypto', 'all',
  'fatal', 'symmetric', 'load-limit', 'rollback', 'no-rollback',
];
const CANONICAL = new Map(KNOWN_FLAGS.map((f) => [f.toLowerCase(), f]));

/** `trust address` → `trust-address`; known flags get their canonical case. */
export function canonicalFlag(f: string): string {
  const dashed = f.trim().replace(/ /g, '-');
  return CANONICAL.get(dashed.toLowerCase()) ?? dashed;
}

const REPLACE = new Map(['origin', 'session-connection', 'session-name', 'sdp-version', 'username', 'zero-address']
  .map((r) => [r, r === 'sdp-version' ? 'SDP-version' : r]));

const ICE_MODES = new Map<string, IceMode>([
  ['remove', 'remove'], ['force', 'force'], ['default', 'default'], ['optional', 'optional'],
  ['force-relay', 'force-relay'], ['force_relay', 'force-relay'], ['force relay', 'force-relay'],
]);

const PROTOCOLS = new Set(['RTP/AVP', 'RTP/SAVP', 'RTP/AVPF', 'RTP/SAVPF', 'UDP/TLS/RTP/SAVP', 'UDP/TLS/RTP/SAVPF']);

/** Unlike tags, an empty call-id is a call-id (rtpengine then answers "Unknown call-id"). */
export function callId(p: Params): string {
  const id = p.str('call-id');
  if (id === null) throw new NgError('No call-id in message');
  return id;
}

export function offerAnswerOptions(p: Params, command: 'offer' | 'answer'): OfferAnswerOptions {
  const sdp = p.text('sdp');
  if (sdp === null || sdp === '') throw new NgError('No SDP body in message');
  const cid = callId(p);
  const fromTag = p.require('from-tag', 'No from-tag in message');
  const toTag = p.str('to-tag');
  if (command === 'answer' && (toTag === null || toTag === '')) throw new NgError('No to-tag in message');

  const flags = new Set<string>();
  const codec = { strip: [] as string[], except: [] as string[], offer: [] as string[], mask: [] as string[], transcode: [] as string[] };
  const replace = new Set<string>();
  for (const raw of p.list('flags')) {
    const f = canonicalFlag(raw);
    const m = /^(?:codec-)?(strip|except|offer|mask|transcode)-(.+)$/.exec(f);
    if (m && (f.startsWith('codec-') || m[1] === 'transcode')) { codec[m[1] as keyof typeof codec].push(m[2]!.replace(/--/g, '=')); continue; }
    // `replace-origin` etc. as flags are not understood by rtpengine 10.5 (only the `replace`
    // list is; Kamailio's module builds that list), so they stay unknown flags here too.
    flags.add(f);
  }
  for (const r of p.list('replace')) {
    const k = r.trim().replace(/ /g, '-').toLowerCase();
    if (REPLACE.has(k)) replace.add(REPLACE.get(k)!);
  }
  const c = p.sub('codec');
  if (c) for (const k of ['strip', 'except', 'offer', 'mask', 'transcode'] as const) codec[k].push(...c.list(k));

  const direction = p.list('direction');
  const rf = p.list('received-from');
  let receivedFrom: OfferAnswerOptions['receivedFrom'] = null;
  if (rf.length === 2 && /^IP[46]$/.test(rf[0]!)) receivedFrom = { family: rf[0] === 'IP6' ? 6 : 4, address: rf[1]! };
  const af = p.str('address-family');
  const ice = ICE_MODES.get((p.str('ice') ?? 'default').toLowerCase()) ?? 'default';
  if (flags.has('reject-ICE') || flags.has('ICE-reject')) { /* answer-side ICE removal */ }
  const tp = p.str('transport-protocol');
  const ptime = p.int('ptime');
  const rec = recordingKeys(p, flags);
  return {
    callId: cid,
    fromTag,
    toTag: toTag === '' ? null : toTag,
    viaBranch: p.str('via-branch') || null,
    sdp,
    flags,
    replace,
    interfaces: [direction[0] ?? null, direction[1] ?? null],
    receivedFrom,
    mediaAddress: p.str('media-address') || null,
    addressFamily: af === 'IP6' ? 6 : af === 'IP4' ? 4 : null,
    ice: flags.has('reject-ICE') || flags.has('ICE-reject') ? 'remove' : ice,
    rtcpMux: new Set(p.list('rtcp-mux').map((x) => x.toLowerCase())),
    transportProtocol: tp !== null && PROTOCOLS.has(tp) ? tp : null,
    codec,
    ptime: command === 'offer' && ptime !== null && ptime > 0 ? ptime : null,
    label: p.str('label'),
    // Named, not spread in: a spread in the middle of the literal builds the object slowly.
    recordCall: rec.recordCall,
    metadata: rec.metadata,
    webrtc: webrtcOptions(p, flags),
  };
}

// --- WebRTC keys (rtpengine 10.5: DTLS, DTLS-reverse, DTLS-fingerprint, SDES, OSRTP, ICE-lite,
// generate RTCP, and their flag forms SDES-…, OSRTP-…, generate-RTCP, pad-crypto) -------------

const OFF = new Set(['off', 'no', 'disable', 'disabled']);
const ICE_LITE = new Map<string, WebrtcOptions['iceLite']>([
  ...['forward', 'offer', 'fwd', 'fw'].map((k) => [k, 'forward'] as const),
  ...['backward', 'backwards', 'reverse', 'answer', 'back', 'bkw', 'bk'].map((k) => [k, 'backward'] as const),
  ['both', 'both'], ...['off', 'none', 'no'].map((k) => [k, 'off'] as const),
]);
const SDES_PARAMS: Record<string, [string, boolean]> = {
  unencrypted_srtp: ['UNENCRYPTED_SRTP', true], unencrypted_srtcp: ['UNENCRYPTED_SRTCP', true],
  unauthenticated_srtp: ['UNAUTHENTICATED_SRTP', true], encrypted_srtp: ['UNENCRYPTED_SRTP', false],
  encrypted_srtcp: ['UNENCRYPTED_SRTCP', false], authenticated_srtp: ['UNAUTHENTICATED_SRTP', false],
};
/** The order rtpengine writes the session parameters in. */
const SDES_PARAM_ORDER = ['UNENCRYPTED_SRTP', 'UNENCRYPTED_SRTCP', 'UNAUTHENTICATED_SRTP'];

export function webrtcOptions(p: Params, flags: ReadonlySet<string>): WebrtcOptions {
  const dtls = (p.str('dtls') ?? '').toLowerCase();
  const rev = (p.str('dtls-reverse') ?? '').toLowerCase();
  const fp = (p.str('dtls-fingerprint') ?? '').toLowerCase();
  const o: WebrtcOptions = {
    dtls: OFF.has(dtls) ? 'off' : dtls === 'passive' || dtls === 'active' ? dtls : 'default',
    dtlsReverse: rev === 'passive' || rev === 'active' ? rev : null,
    dtlsFingerprint: /^sha-(1|224|256|384|512)$/.test(fp) ? fp : null,
    sdesOff: false, sdesNo: [], sdesOnly: [], sdesPad: flags.has('pad-crypto'), sdesLifetime: false, sdesParams: [],
    osrtpOffer: false, osrtpAccept: false,
    iceLite: ICE_LITE.get((p.str('ice-lite') ?? '').toLowerCase()) ?? 'off',
    generateRtcp: flags.has('generate-RTCP') ? true : null,
  };
  const gen = (p.str('generate-rtcp') ?? '').toLowerCase();
  if (gen === 'on' || gen === 'yes') o.generateRtcp = true;
  else if (OFF.has(gen)) o.generateRtcp = false;
  const params = new Map<string, boolean>();
  const sdes = (item: string): void => {
    const lower = item.toLowerCase();
    if (OFF.has(lower)) o.sdesOff = true;
    else if (lower === 'pad') o.sdesPad = true;
    else if (lower === 'lifetime') o.sdesLifetime = true;
    else if (lower.startsWith('no-')) o.sdesNo.push(item.slice(3).toUpperCase());
    else if (lower.startsWith('only-')) o.sdesOnly.push(item.slice(5).toUpperCase());
    else if (SDES_PARAMS[lower]) params.set(SDES_PARAMS[lower]![0], SDES_PARAMS[lower]![1]);
  };
  const osrtp = (item: string): void => {
    const lower = item.toLowerCase();
    if (lower === 'offer') o.osrtpOffer = true;
    if (lower === 'accept') o.osrtpAccept = true;
  };
  const sdesKey = p.keys.get('sdes');
  if (Array.isArray(sdesKey)) p.list('sdes').forEach(sdes); else { const s1 = p.str('sdes'); if (s1) sdes(s1); }
  const osrtpKey = p.keys.get('osrtp');
  if (Array.isArray(osrtpKey)) p.list('osrtp').forEach(osrtp); else { const s1 = p.str('osrtp'); if (s1) osrtp(s1); }
  for (const f of flags) {
    if (/^SDES-/i.test(f)) sdes(f.slice(5));
    else if (/^OSRTP-/i.test(f)) osrtp(f.slice(6));
  }
  o.sdesParams = SDES_PARAM_ORDER.filter((k) => params.get(k) === true);
  return o;
}

// --- Recording keys (ng-protocol.md §3.11): `record call` / `record-call` is yes|no|on|off, the
// `record-call` flag is `on`; `metadata` is stored with the recording as it is. -----------------
const RECORD_CALL = new Map([['yes', true], ['on', true], ['no', false], ['off', false]]);

function recordingKeys(p: Params, flags: ReadonlySet<string>): { recordCall: boolean | null; metadata: string | null } {
  const v = p.str('record-call');
  const recordCall = v !== null ? RECORD_CALL.get(v.trim().toLowerCase()) ?? null : flags.has('record-call') ? true : null;
  return { recordCall, metadata: p.str('metadata') };
}

/** `start recording` / `stop recording` / `pause recording`: the call; `output-destination` is accepted and ignored. */
export function recordingOptions(p: Params): RecordingOptions {
  return { callId: callId(p), metadata: p.str('metadata') };
}

export function deleteOptions(p: Params): DeleteOptions {
  const delay = p.int('delete-delay');
  return {
    callId: callId(p),
    fromTag: p.str('from-tag') || null,
    toTag: p.str('to-tag') || null,
    viaBranch: p.str('via-branch') || null,
    fatal: p.list('flags').includes('fatal'), // case-sensitive in rtpengine: `FATAL` is ignored
    rollback: rollbackMode(p.list('flags').map((f) => canonicalFlag(f).toLowerCase())),
    deleteDelayS: delay !== null && delay >= 0 ? delay : null,
  };
}

/** rtprelay's delete flags: `rollback` (undo a pending re-offer only), `no-rollback` (end the call). */
function rollbackMode(flags: string[]): DeleteOptions['rollback'] {
  if (flags.includes('no-rollback')) return 'never';
  return flags.includes('rollback') ? 'only' : 'auto';
}

export function queryOptions(p: Params): QueryOptions {
  return { callId: callId(p), fromTag: p.str('from-tag') || null, toTag: p.str('to-tag') || null };
}

export function supportsLoadLimit(p: Params): boolean {
  return p.list('supports').some((s) => s.toLowerCase().replace(/ /g, '-') === 'load-limit');
}
