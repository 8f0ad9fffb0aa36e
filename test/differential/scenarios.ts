// Differential scenarios: NG command sequences sent to rtpengine 10.5 (record.ts writes its
// normalised replies to test/fixtures/differential/) and to rtprelay (test/integration/
// differential.test.ts compares). Each daemon runs with the interfaces in INTERFACES.
// The call-id is added by the replayer; every other key is sent as written here.
import type { NgValue } from '../../control/codec.js';

/**
 * A deliberate difference from rtpengine: lines of the recorded reply of `step` that match
 * `match` are replaced (`replace` as in String.replace, null: dropped) before comparing.
 */
export type Allow =
  | { step: number; match: RegExp; replace: string | null; why: string }
  /** The step's reply is not compared at all (both sides); for differences a line patch cannot say. */
  | { step: number; skip: true; why: string }
  /** Lines we write that 10.5 does not: `insert` goes after the first recorded line matching `after`. */
  | { step: number; after: RegExp; insert: string[]; why: string };

/**
 * Deliberately unlike rtpengine 10.5: an RTP/AVPF offer converted to RTP/AVP loses its
 * a=rtcp-fb lines (RFC 4585 feedback does not exist under AVP; the plane also filters the
 * feedback packets towards that party). 10.5 passes them through.
 */
const noFeedbackTowardsAvp = (...steps: number[]): Allow[] => steps.map((step) => ({
  step, match: /^a=rtcp-fb:.*$/, replace: null, why: 'a=rtcp-fb is removed when AVPF is converted to AVP',
}));

/**
 * Deliberately unlike rtpengine 10.5, which drops a=group:BUNDLE (ng-protocol.md §4) and gives
 * every m= line its own port: a WebRTC offerer's BUNDLE group comes back in our answer with the
 * mids we accepted, and every bundled m= line uses the first mid's transport (one port, one set
 * of ICE credentials and candidates), as RFC 8843 requires. A browser with bundlePolicy
 * 'max-bundle' refuses an answer without it (daemon/session/bundle.ts). `same` maps the labels
 * 10.5 gave the other media's transport onto the first media's (e.g. ['{PORT5}', '{PORT3}']).
 */
const bundleBack = (step: number, mids: string, same: [string, string][] = []): Allow[] => {
  const why = 'BUNDLE is kept towards a WebRTC offerer (one transport for the group)';
  return [
    { step, after: /^t=/, insert: [`a=group:BUNDLE ${mids}`], why },
    ...same.map(([from, to]): Allow => ({ step, match: new RegExp(from.replace(/[{}+]/g, '\\$&')), replace: to, why })),
  ];
};

export interface Scenario {
  name: string;
  about: string;
  steps: Record<string, NgValue>[];
  allow?: Allow[];
}

/** Same logical interfaces on both daemons: a dual-stack default plus three named networks. */
export const INTERFACES = [
  '127.0.0.1', '::1', 'internal/127.0.0.3', 'external/127.0.0.2', 'dmz/127.0.0.4',
];

const body = (...lines: string[]): string => lines.join('\r\n') + '\r\n';

/** A plain phone: session-level c=, one audio stream. */
function phone(o: {
  addr?: string; port?: number; fmts?: string; extra?: string[]; session?: string[]; version?: number;
  user?: string; name?: string;
} = {}): string {
  const addr = o.addr ?? '192.0.2.10';
  const ip = addr.includes(':') ? 'IP6' : 'IP4';
  return body(
    'v=0', `o=${o.user ?? '-'} 1545997027 ${o.version ?? 1} IN ${ip} ${addr}`, `s=${o.name ?? 'call'}`,
    `c=IN ${ip} ${addr}`, 't=0 0', ...(o.session ?? []),
    `m=audio ${o.port ?? 5004} RTP/AVP ${o.fmts ?? '0 8 101'}`,
    ...(o.fmts === undefined ? ['a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16'] : []),
    ...(o.extra ?? []),
  );
}

const A = (o: Parameters<typeof phone>[0] = {}): string => phone(o);
const B = (o: Parameters<typeof phone>[0] = {}): string => phone({ addr: '198.51.100.20', port: 6000, user: 'callee', ...o });

const offer = (sdp: string, extra: Record<string, NgValue> = {}): Record<string, NgValue> =>
  ({ command: 'offer', 'from-tag': 'ftag', sdp, ...extra });
const answer = (sdp: string, extra: Record<string, NgValue> = {}): Record<string, NgValue> =>
  ({ command: 'answer', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp, ...extra });
/** The callee re-INVITEs: it is now the offerer. */
const reoffer = (sdp: string, extra: Record<string, NgValue> = {}): Record<string, NgValue> =>
  ({ command: 'offer', 'from-tag': 'ttag', 'to-tag': 'ftag', sdp, ...extra });
const reanswer = (sdp: string, extra: Record<string, NgValue> = {}): Record<string, NgValue> =>
  ({ command: 'answer', 'from-tag': 'ttag', 'to-tag': 'ftag', sdp, ...extra });

/** What Kamailio's rtpengine_manage() typically sends for a SIP trunk. */
const KAMAILIO = { replace: ['origin', 'session-connection'], ICE: 'remove', flags: ['trust-address'] };

/** A WebRTC-ish offer: media-level c=, ICE, mux, mid, rtcp-fb, extmap, msid, ssrc. */
function browser(o: { trickle?: boolean; video?: boolean } = {}): string {
  const ice = (comp: string, port: number): string[] => [
    `a=candidate:842163049 1 udp 1677729535 203.0.113.7 ${port} typ srflx raddr 10.0.0.7 rport ${port} generation 0`,
    `a=candidate:1467250027 1 udp 2122260223 10.0.0.7 ${port} typ host generation 0`,
  ].map((l) => l.replace(' 1 udp', ` ${comp} udp`));
  const media = (kind: 'audio' | 'video', port: number, mid: string, fmts: string, codec: string[]): string[] => [
    `m=${kind} ${port} RTP/AVPF ${fmts}`, 'c=IN IP4 203.0.113.7', `a=rtcp:${port} IN IP4 203.0.113.7`,
    ...ice('1', port), 'a=ice-ufrag:Fx7q', 'a=ice-pwd:p9sRrFjeuK0DHgr1QLwYpMeZ',
    ...(o.trickle ? ['a=ice-options:trickle'] : []),
    `a=mid:${mid}`, 'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level', 'a=sendrecv',
    `a=msid:stream1 track-${mid}`, 'a=rtcp-mux', ...codec, `a=ssrc:11111${mid} cname:abcdefgh`,
  ];
  return body(
    'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    `a=group:BUNDLE 0${o.video ? ' 1' : ''}`, 'a=msid-semantic: WMS stream1',
    ...media('audio', 50000, '0', '111 0 126', [
      'a=rtpmap:111 opus/48000/2', 'a=rtcp-fb:111 transport-cc', 'a=fmtp:111 minptime=10;useinbandfec=1',
      'a=rtpmap:126 telephone-event/8000',
    ]),
    ...(o.video ? media('video', 50002, '1', '96 97', [
      'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 goog-remb', 'a=rtcp-fb:96 nack', 'a=rtcp-fb:96 nack pli',
      'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96',
    ]) : []),
  );
}

/** Audio + video desk phone: media-level c=, b=, i=, several codecs, rtcp-fb on video. */
function videoPhone(o: { audioPort?: number; videoPort?: number; addr?: string; videoDir?: string } = {}): string {
  const addr = o.addr ?? '192.0.2.30';
  return body(
    'v=0', `o=desk 200 1 IN IP4 ${addr}`, 's=desk call', 'i=a desk phone', 'b=AS:2048', 't=0 0',
    'a=tool:deskphone 1.0',
    `m=audio ${o.audioPort ?? 7000} RTP/AVP 9 0 8 18 101`, 'i=voice', `c=IN IP4 ${addr}`, 'b=AS:84',
    'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', 'a=fmtp:18 annexb=no', 'a=ptime:20',
    'a=label:1',
    `m=video ${o.videoPort ?? 7002} RTP/AVP 99 34`, `c=IN IP4 ${addr}`, 'b=TIAS:1000000',
    'a=rtpmap:99 H264/90000', 'a=fmtp:99 profile-level-id=42801f;packetization-mode=1',
    'a=rtcp-fb:* nack', 'a=rtcp-fb:99 ccm fir', 'a=rtcp-fb:34 nack pli', 'a=framerate:30',
    ...(o.videoDir ? [`a=${o.videoDir}`] : []),
  );
}

const HOLD = (o: Parameters<typeof phone>[0] = {}): string => A({ ...o, addr: '0.0.0.0' }).replace('o=- 1545997027 1 IN IP4 0.0.0.0', 'o=- 1545997027 2 IN IP4 192.0.2.10');

export const SCENARIOS: Scenario[] = [
  // --- basics -----------------------------------------------------------------------------
  { name: 'basic-offer-answer', about: 'session c=, PCMU/PCMA/telephone-event, no flags', steps: [offer(A()), answer(B())] },
  { name: 'kamailio-trunk', about: 'the typical Kamailio flags', steps: [offer(A(), KAMAILIO), answer(B(), KAMAILIO)] },
  { name: 'kamailio-flags-as-strings', about: 'replace given as flags, spaces in names', steps: [
    offer(A(), { flags: ['replace-origin', 'replace-session-connection', 'trust address'], ICE: 'remove' }),
    answer(B(), { flags: ['replace-origin', 'replace-session connection', 'trust-address'] }),
  ] },
  { name: 'static-payload-rtpmap', about: 'a=rtpmap added for every static payload type', steps: [
    offer(A({ fmts: '0 3 4 8 9 15 18 13' })), answer(B({ fmts: '18 13' })),
  ] },
  { name: 'rtpmap-given-for-static', about: 'the input already names the static codecs', steps: [
    offer(A({ fmts: '8 0', extra: ['a=rtpmap:8 PCMA/8000', 'a=rtpmap:0 PCMU/8000', 'a=ptime:20'] })), answer(B({ fmts: '8' })),
  ] },
  { name: 'dynamic-codecs-fmtp', about: 'dynamic payload types, fmtp, unknown attributes in order', steps: [
    offer(A({ fmts: '96 97 0 101', extra: [
      'a=x-unknown:first', 'a=rtpmap:96 opus/48000/2', 'a=fmtp:96 useinbandfec=1', 'a=rtpmap:97 speex/16000',
      'a=x-unknown:second', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', 'a=maxptime:40', 'a=label:main',
    ] })),
    answer(B({ fmts: '96 101', extra: ['a=rtpmap:96 opus/48000/2', 'a=rtpmap:101 telephone-event/8000', 'a=x-answer'] })),
  ] },
  { name: 'media-level-connection', about: 'c= only at media level', steps: [
    offer(body('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 't=0 0', 'm=audio 5004 RTP/AVP 0', 'c=IN IP4 192.0.2.10')),
    answer(body('v=0', 'o=- 2 1 IN IP4 198.51.100.20', 's=-', 't=0 0', 'm=audio 6000 RTP/AVP 0', 'c=IN IP4 198.51.100.20')),
  ] },
  { name: 'session-and-media-connection', about: 'session c= not relied upon stays unless replace session-connection', steps: [
    offer(body('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.99', 't=0 0', 'm=audio 5004 RTP/AVP 0', 'c=IN IP4 192.0.2.10')),
    answer(body('v=0', 'o=- 2 1 IN IP4 198.51.100.20', 's=-', 'c=IN IP4 198.51.100.99', 't=0 0', 'm=audio 6000 RTP/AVP 0', 'c=IN IP4 198.51.100.20'), { replace: ['session-connection'] }),
  ] },
  { name: 'session-attributes-b-i-lines', about: 'session i=, b=, u=, e=, attributes and BUNDLE group', steps: [
    offer(body('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=x', 'i=info', 'u=http://example.com/', 'e=a@example.com',
      'c=IN IP4 192.0.2.10', 'b=CT:128', 't=0 0', 'a=group:BUNDLE 0', 'a=tool:foo', 'a=x-session:1',
      'm=audio 5004 RTP/AVP 0 8', 'i=media info', 'b=AS:64', 'a=mid:0', 'a=x-media:1')),
    answer(B({ session: ['a=x-callee-session'] })),
    // The callee answered 101, which was not offered: rtpengine drops it.
  ] },
  { name: 'audio-video-desk-phone', about: 'two m= lines, each its own port pair, rtcp-fb with its codec', steps: [
    offer(videoPhone()), answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 8002 })),
  ] },
  { name: 'reject-video', about: 'the answerer rejects the video stream (port 0)', steps: [
    offer(videoPhone()),
    answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 0 })),
  ] },
  { name: 'offer-with-rejected-stream', about: 'the offer already carries a disabled stream', steps: [
    offer(videoPhone({ videoPort: 0 })), answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 0 })),
  ] },
  { name: 'three-streams', about: 'audio, audio, video', steps: [
    offer(body('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.10', 't=0 0',
      'm=audio 5004 RTP/AVP 0', 'm=audio 5006 RTP/AVP 8', 'a=sendonly', 'm=video 5008 RTP/AVP 31')),
    answer(body('v=0', 'o=- 2 1 IN IP4 198.51.100.20', 's=-', 'c=IN IP4 198.51.100.20', 't=0 0',
      'm=audio 6000 RTP/AVP 0', 'm=audio 6002 RTP/AVP 8', 'a=recvonly', 'm=video 0 RTP/AVP 31')),
  ] },
  { name: 'explicit-rtcp-attribute', about: 'input a=rtcp (with and without address) is replaced', steps: [
    offer(A({ fmts: '0', extra: ['a=rtcp:5010 IN IP4 192.0.2.11'] })), answer(B({ fmts: '0', extra: ['a=rtcp:6009'] })),
  ] },
  // --- direction ----------------------------------------------------------------------------
  { name: 'direction-sendonly-recvonly', about: 'direction passes through', steps: [
    offer(A({ extra: ['a=sendonly'] })), answer(B({ extra: ['a=recvonly'] })),
  ] },
  { name: 'direction-inactive', about: 'inactive both ways', steps: [offer(A({ extra: ['a=inactive'] })), answer(B({ extra: ['a=inactive'] }))] },
  { name: 'session-level-direction', about: 'a session-level direction moves into each media', steps: [
    offer(A({ session: ['a=sendonly'] })), answer(B({ session: ['a=recvonly'] })),
  ] },
  { name: 'hold-zero-address', about: 'c=0.0.0.0 without direction: sendonly, address kept', steps: [
    offer(A()), answer(B()), offer(HOLD()), answer(B({ extra: ['a=recvonly'], version: 2 })), offer(A({ version: 3 })), answer(B({ version: 3 })),
  ] },
  { name: 'hold-sendonly', about: 're-INVITE with a=sendonly, then resume', steps: [
    offer(A(), KAMAILIO), answer(B(), KAMAILIO),
    offer(A({ version: 2, extra: ['a=sendonly'] }), KAMAILIO), answer(B({ version: 2, extra: ['a=recvonly'] }), KAMAILIO),
    offer(A({ version: 3 }), KAMAILIO), answer(B({ version: 3 }), KAMAILIO),
  ] },
  { name: 'hold-zero-address-replace', about: 'zero-address replacement', steps: [
    offer(A()), answer(B()), offer(HOLD(), { replace: ['zero-address'] }),
  ] },
  { name: 'callee-reinvite', about: 'the callee re-offers, the caller answers', steps: [
    offer(A()), answer(B()), reoffer(B({ version: 2, extra: ['a=sendonly'] })), reanswer(A({ version: 2, extra: ['a=recvonly'] })),
  ] },
  { name: 'repeated-offer-same-ports', about: 'an identical re-offer gets the same ports and SDP', steps: [
    offer(A()), offer(A()), answer(B()), answer(B()),
  ] },
  { name: 'reoffer-new-endpoint', about: 'the caller moves: new ports towards the callee', steps: [
    offer(A()), answer(B()), offer(A({ port: 5020, version: 2 })), answer(B({ version: 2 })),
  ] },
  // --- replace ------------------------------------------------------------------------------
  { name: 'replace-origin', about: 'only origin: session c= is rewritten anyway (relied upon)', steps: [
    offer(A(), { replace: ['origin'] }), answer(B(), { replace: ['origin'] }),
  ] },
  { name: 'replace-sdp-version', about: 'o= version goes up only when our SDP changes', steps: [
    offer(A(), { replace: ['SDP-version'] }), answer(B()),
    offer(A(), { replace: ['SDP-version'] }),
    offer(A({ port: 5030 }), { replace: ['SDP-version'] }),
    offer(A({ port: 5030, version: 7 }), { replace: ['SDP-version'] }),
  ] },
  { name: 'replace-username-session-name', about: 'o= username and s= stay what the first SDP said', steps: [
    offer(A({ user: 'alice', name: 'first' }), { replace: ['username', 'session-name'] }), answer(B()),
    offer(A({ user: 'alice2', name: 'second', version: 2 }), { replace: ['username', 'session-name', 'origin'] }),
  ] },
  // --- IPv6 and interfaces ------------------------------------------------------------------
  { name: 'ipv6-both-sides', about: 'IPv6 in, IPv6 out', steps: [
    offer(A({ addr: '2001:db8::10' })), answer(B({ addr: '2001:db8::20' })),
  ] },
  { name: 'address-family-4-to-6', about: 'IPv4 caller, IPv6 towards the callee', steps: [
    offer(A(), { 'address-family': 'IP6' }), answer(B({ addr: '2001:db8::20' })),
  ] },
  { name: 'address-family-6-to-4', about: 'IPv6 caller, IPv4 towards the callee', steps: [
    offer(A({ addr: '2001:db8::10' }), { 'address-family': 'IP4', replace: ['origin'] }), answer(B(), { replace: ['origin'] }),
  ] },
  { name: 'direction-internal-external', about: 'named interfaces pick the addresses', steps: [
    offer(A(), { direction: ['internal', 'external'], ...KAMAILIO }), answer(B(), KAMAILIO),
  ] },
  { name: 'direction-external-internal', about: 'the reverse bridge', steps: [
    offer(A(), { direction: ['external', 'internal'] }), answer(B()),
  ] },
  { name: 'direction-three-networks', about: 'a call bridged external→dmz, then a re-offer keeps the choice', steps: [
    offer(A(), { direction: ['external', 'dmz'], replace: ['origin'] }), answer(B(), { replace: ['origin'] }),
    offer(A({ version: 2 }), { replace: ['origin'] }), answer(B({ version: 2 }), { replace: ['origin'] }),
  ] },
  { name: 'direction-unknown-interface', about: 'an unknown name falls back to the default', steps: [
    offer(A(), { direction: ['nowhere', 'internal'] }), answer(B()),
  ] },
  { name: 'media-address', about: 'media-address is what we write into c= and a=rtcp', steps: [
    offer(A(), { 'media-address': '203.0.113.99', flags: ['full-rtcp-attribute'] }), answer(B()),
  ] },
  { name: 'received-from-trust-address', about: 'trust-address: SDP address used, SDP output unchanged', steps: [
    offer(A(), { 'received-from': ['IP4', '192.0.2.200'], flags: ['trust-address'] }),
    answer(B(), { 'received-from': ['IP4', '198.51.100.200'] }),
  ] },
  { name: 'received-from-sip-source', about: 'SIP-source-address: only the remote endpoint changes', steps: [
    offer(A(), { 'received-from': ['IP4', '192.0.2.200'], flags: ['SIP-source-address'] }),
    answer(B(), { 'received-from': ['IP4', '198.51.100.200'], flags: ['SIP-source-address'] }),
  ] },
  // --- ptime and codecs ---------------------------------------------------------------------
  { name: 'ptime-replaced', about: 'ptime 30 replaces the offer a=ptime:20', steps: [
    offer(A({ extra: ['a=ptime:20', 'a=maxptime:60'] }), { ptime: 30 }), answer(B({ extra: ['a=ptime:20'] })),
  ] },
  { name: 'ptime-added', about: 'ptime given as a string, the offer had none', steps: [offer(A(), { ptime: '40' }), answer(B())] },
  { name: 'codec-strip', about: 'strip PCMA; a=rtpmap/fmtp of stripped codecs go', steps: [
    offer(A({ fmts: '8 0 18 101', extra: ['a=rtpmap:101 telephone-event/8000', 'a=fmtp:18 annexb=no', 'a=fmtp:101 0-16'] }), { codec: { strip: ['PCMA', 'G729'] } }),
    answer(B({ fmts: '0 101', extra: ['a=rtpmap:101 telephone-event/8000'] })),
  ] },
  { name: 'codec-strip-all-except', about: 'strip all except PCMU and telephone-event', steps: [
    offer(A(), { codec: { strip: ['all'], except: ['PCMU', 'telephone-event'] } }), answer(B({ fmts: '0 101', extra: ['a=rtpmap:101 telephone-event/8000'] })),
  ] },
  { name: 'codec-strip-all-offer-reorder', about: 'strip all + offer reorders', steps: [
    offer(A(), { codec: { strip: ['all'], offer: ['PCMA', 'PCMU'] } }), answer(B({ fmts: '8' })),
  ] },
  { name: 'codec-offer-no-reorder', about: 'offer without strip all keeps the order', steps: [
    offer(A(), { codec: { offer: ['PCMA', 'PCMU'] } }), answer(B({ fmts: '0' })),
  ] },
  { name: 'codec-offer-fmtp-in-answer', about: 'offer without strip all: does the answer get the offer fmtp?', steps: [
    offer(A(), { codec: { offer: ['PCMA'] } }), answer(B({ fmts: '0 101', extra: ['a=rtpmap:101 telephone-event/8000'] })),
  ] },
  { name: 'codec-flags', about: 'codec-strip-… and codec-except-… as flags', steps: [
    offer(A(), { flags: ['codec-strip-all', 'codec-except-PCMA'] }), answer(B({ fmts: '8' })),
  ] },
  { name: 'codec-mask', about: 'mask hides a codec from the callee', steps: [
    offer(A(), { codec: { mask: ['PCMU'] } }), answer(B({ fmts: '8 101', extra: ['a=rtpmap:101 telephone-event/8000'] })),
  ] },
  // --- attribute flags ----------------------------------------------------------------------
  { name: 'loop-protect', about: 'a=rtpengine added; a looped SDP comes back unchanged', steps: [
    offer(A(), { flags: ['loop-protect'] }),
    offer(A({ session: ['a=rtpengine:looped0000001'] }), { flags: ['loop-protect'], 'from-tag': 'loopB' }),
  ] },
  { name: 'loop-protect-looped', about: 'our own SDP offered back to us comes back unchanged', steps: [
    offer(A(), { flags: ['loop-protect'] }),
    { command: 'offer', 'from-tag': 'loopB', sdp: { 'from-reply': 0 }, flags: ['loop-protect'] },
  ] },
  { name: 'generate-mid', about: 'a=mid numbered per m= line', steps: [
    offer(videoPhone(), { flags: ['generate-mid'] }), answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 8002 })),
  ] },
  { name: 'no-rtcp-attribute', about: 'no a=rtcp written', steps: [
    offer(A(), { flags: ['no-rtcp-attribute'] }), answer(B(), { flags: ['no-rtcp-attribute'] }),
  ] },
  { name: 'full-rtcp-attribute', about: 'a=rtcp with address, IPv4 and IPv6', steps: [
    offer(A(), { flags: ['full-rtcp-attribute'], 'address-family': 'IP6' }), answer(B({ addr: '2001:db8::20' }), { flags: ['full-rtcp-attribute'] }),
  ] },
  { name: 'original-sendrecv', about: 'the direction attribute stays where it was', steps: [
    offer(A({ extra: ['a=sendonly', 'a=x-after'] }), { flags: ['original-sendrecv'] }), answer(B(), { flags: ['original-sendrecv'] }),
  ] },
  { name: 'strip-extmap', about: 'a=extmap removed', steps: [
    offer(browser(), { flags: ['strip-extmap'], ICE: 'remove', 'rtcp-mux': ['demux'] }),
    answer(B({ fmts: '0', extra: ['a=extmap:1 urn:x'] })),
  ], allow: bundleBack(1, '0') },
  // --- rtcp-mux -----------------------------------------------------------------------------
  { name: 'rtcp-mux-offer', about: 'offer mux on plain RTP/AVP', steps: [
    offer(A(), { 'rtcp-mux': ['offer'] }), answer(B({ extra: ['a=rtcp-mux'] })),
  ] },
  { name: 'rtcp-mux-require', about: 'require: a=rtcp shows the RTP port', steps: [
    offer(A(), { 'rtcp-mux': ['require'] }), answer(B({ extra: ['a=rtcp-mux'] })),
  ] },
  { name: 'rtcp-mux-demux', about: 'demux: not passed on, accepted back', steps: [
    offer(A({ extra: ['a=rtcp-mux'] }), { 'rtcp-mux': ['demux'] }), answer(B()),
  ] },
  { name: 'rtcp-mux-accept', about: 'default: mux offered is passed on and accepted', steps: [
    offer(A({ extra: ['a=rtcp-mux'] }), { 'rtcp-mux': ['accept'] }), answer(B({ extra: ['a=rtcp-mux'] })),
  ] },
  { name: 'rtcp-mux-answer-refuses', about: 'mux offered, the answerer does not take it', steps: [
    offer(A({ extra: ['a=rtcp-mux'] })), answer(B()),
  ] },
  { name: 'rtcp-mux-reject', about: 'reject: not accepted back towards the offerer', steps: [
    offer(A({ extra: ['a=rtcp-mux'] }), { 'rtcp-mux': ['reject'] }), answer(B({ extra: ['a=rtcp-mux'] })),
  ] },
  // --- ICE ----------------------------------------------------------------------------------
  { name: 'ice-remove-webrtc', about: 'browser to plain phone with ICE removed', steps: [
    offer(browser({ video: true }), { ICE: 'remove', 'rtcp-mux': ['demux'] }),
    answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 8002 })),
  ], allow: bundleBack(1, '0 1', [['{PORT5}', '{PORT3}'], ['{PORT6}', '{PORT4}'], ['{UFRAG2}', '{UFRAG1}'], ['{PWD2}', '{PWD1}']]) },
  { name: 'ice-default-candidates', about: 'ICE default: our candidates replace theirs', steps: [
    offer(browser()), answer(B({ fmts: '111 0', extra: ['a=rtpmap:111 opus/48000/2', 'a=rtcp-mux'] })),
  ], allow: bundleBack(1, '0') },
  { name: 'ice-default-trickle', about: 'the peer advertised trickle', steps: [
    offer(browser({ trickle: true })), answer(B({ fmts: '0' })),
  ], allow: bundleBack(1, '0') },
  { name: 'ice-force', about: 'ICE force on a plain phone', steps: [
    offer(A(), { ICE: 'force' }), answer(B(), { ICE: 'force' }),
  ] },
  { name: 'ice-force-ptime', about: 'where a=ptime goes when ICE attributes follow a=rtcp', steps: [
    offer(A({ fmts: '0', extra: ['a=ptime:20'] }), { ICE: 'force', ptime: 30 }), answer(B({ fmts: '0', extra: ['a=ptime:30'] }), { ICE: 'force' }),
  ] },
  { name: 'ice-force-trickle-flag', about: 'ICE force plus trickle-ICE in the offer', steps: [
    offer(A({ fmts: '0' }), { ICE: 'force', flags: ['trickle-ICE'] }), answer(B({ fmts: '0' })),
  ] },
  { name: 'ice-plain-to-browser-answer', about: 'plain answerer, ICE default back to the browser', steps: [
    offer(browser({ video: true }), { 'rtcp-mux': ['demux'], flags: ['generate-mid'] }),
    answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 8002 })),
  ], allow: bundleBack(1, '0 1', [['{PORT7}', '{PORT5}'], ['{PORT8}', '{PORT6}'], ['{UFRAG4}', '{UFRAG3}'], ['{PWD4}', '{PWD3}']]) },
  // --- more variations ----------------------------------------------------------------------
  { name: 'hold-inactive-zero', about: 'c=0.0.0.0 with a=inactive keeps inactive', steps: [
    offer(A()), answer(B()), offer(HOLD({ extra: ['a=inactive'] })), answer(B({ version: 2, extra: ['a=inactive'] })),
  ] },
  { name: 'hold-ipv6-zero', about: 'IPv6 hold with c=IN IP6 ::', steps: [
    offer(A({ addr: '2001:db8::10' })), answer(B({ addr: '2001:db8::20' })),
    offer(A({ addr: '2001:db8::10', version: 2 }).replace(/c=IN IP6 2001:db8::10/, 'c=IN IP6 ::')),
  ] },
  { name: 'ipv6-replace-origin-ice-force', about: 'IPv6 in, origin replaced, ICE forced', steps: [
    offer(A({ addr: '2001:db8::10', fmts: '0' }), { replace: ['origin', 'session-connection'], ICE: 'force' }),
    answer(B({ addr: '2001:db8::20', fmts: '0' }), { replace: ['origin'] }),
  ] },
  { name: 'direction-with-address-family', about: 'named interface plus IPv6 towards the callee (falls back)', steps: [
    offer(A(), { direction: ['internal', 'external'], 'address-family': 'IP6' }), answer(B({ addr: '2001:db8::20' })),
  ] },
  { name: 'media-address-ice', about: 'media-address also goes into the candidates', steps: [
    offer(A({ fmts: '0' }), { 'media-address': '203.0.113.99', ICE: 'force' }), answer(B({ fmts: '0' })),
  ] },
  { name: 'reanswer-codec-change', about: 'a second answer narrows the codecs', steps: [
    offer(A()), answer(B()), answer(B({ fmts: '8', version: 2 })),
  ] },
  { name: 'answer-telephone-event-only-offered', about: 'the answer keeps telephone-event with its own fmtp', steps: [
    offer(A()), answer(B({ fmts: '8 101', extra: ['a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-11'] })),
  ] },
  { name: 'answer-sdp-version-and-origin', about: 'replace on the answer side', steps: [
    offer(A()), answer(B(), { replace: ['origin', 'SDP-version'] }), answer(B({ port: 6010 }), { replace: ['origin', 'SDP-version'] }),
  ] },
  { name: 'video-only-recvonly', about: 'one video stream, recvonly, rtcp-fb:* kept in place', steps: [
    offer(body('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.10', 't=0 0',
      'm=video 5004 RTP/AVP 96', 'a=rtcp-fb:* ccm fir', 'a=rtpmap:96 VP8/90000', 'a=recvonly', 'a=rtcp-fb:96 nack')),
    answer(body('v=0', 'o=- 2 1 IN IP4 198.51.100.20', 's=-', 'c=IN IP4 198.51.100.20', 't=0 0',
      'm=video 6000 RTP/AVP 96', 'a=rtpmap:96 VP8/90000', 'a=sendonly')),
  ] },
  // --- errors and delete --------------------------------------------------------------------
  { name: 'error-garbage-sdp', about: 'unparseable SDP', steps: [offer('this is not SDP\r\n')] },
  { name: 'error-no-media', about: 'no m= line', steps: [offer(body('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.10', 't=0 0'))] },
  { name: 'error-no-connection', about: 'media without any c=', steps: [
    offer(body('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 't=0 0', 'm=audio 5004 RTP/AVP 0')),
  ] },
  { name: 'delete-after-call', about: 'delete answers ok; a second delete warns', steps: [
    offer(A()), answer(B()), { command: 'delete', 'from-tag': 'ftag', 'delete-delay': 0 }, { command: 'delete', 'delete-delay': 0 },
  ] },
];

// --- WebRTC ↔ legacy (issue "WebRTC to legacy phones") --------------------------------------

const FP_SHA256 = 'sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08';

/**
 * What Chrome offers: UDP/TLS/RTP/SAVPF, one BUNDLE transport (same port, credentials and
 * candidates on every m= line), DTLS actpass, rtcp-mux, rtcp-fb, extmap, msid, ssrc.
 */
function chrome(o: { video?: boolean; setup?: string; trickle?: boolean } = {}): string {
  const transport = [
    'c=IN IP4 203.0.113.7', 'a=rtcp:9 IN IP4 0.0.0.0',
    'a=candidate:1467250027 1 udp 2122260223 10.0.0.7 50000 typ host generation 0 network-id 1',
    'a=candidate:842163049 1 udp 1686052607 203.0.113.7 50000 typ srflx raddr 10.0.0.7 rport 50000 generation 0 network-id 1',
    'a=ice-ufrag:Fx7q', 'a=ice-pwd:p9sRrFjeuK0DHgr1QLwYpMeZ', ...(o.trickle === false ? [] : ['a=ice-options:trickle']),
    `a=fingerprint:${FP_SHA256}`, `a=setup:${o.setup ?? 'actpass'}`,
  ];
  return body(
    'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    `a=group:BUNDLE 0${o.video ? ' 1' : ''}`, 'a=extmap-allow-mixed', 'a=msid-semantic: WMS stream1',
    'm=audio 50000 UDP/TLS/RTP/SAVPF 111 0 126', ...transport, 'a=mid:0',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level', 'a=sendrecv', 'a=msid:stream1 track-0', 'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2', 'a=rtcp-fb:111 transport-cc', 'a=fmtp:111 minptime=10;useinbandfec=1',
    'a=rtpmap:0 PCMU/8000', 'a=rtpmap:126 telephone-event/8000', 'a=ssrc:111110 cname:abcdefgh',
    ...(o.video ? [
      'm=video 50000 UDP/TLS/RTP/SAVPF 96 97', ...transport, 'a=mid:1',
      'a=extmap:2 urn:ietf:params:rtp-hdrext:toffset', 'a=sendrecv', 'a=msid:stream1 track-1', 'a=rtcp-mux',
      'a=rtcp-rsize', 'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 goog-remb', 'a=rtcp-fb:96 nack', 'a=rtcp-fb:96 nack pli',
      'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96', 'a=ssrc:111111 cname:abcdefgh',
    ] : []),
  );
}

/** Chrome's answer to an offer from us (setup active, one candidate, mux). */
function chromeAnswer(o: { setup?: string; fmts?: string; fingerprint?: string } = {}): string {
  return body(
    'v=0', 'o=- 7003020212 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=msid-semantic: WMS s2',
    `m=audio 50010 UDP/TLS/RTP/SAVPF ${o.fmts ?? '0 101'}`, 'c=IN IP4 203.0.113.8', 'a=rtcp:9 IN IP4 0.0.0.0',
    'a=candidate:2222 1 udp 2122260223 203.0.113.8 50010 typ host generation 0',
    'a=ice-ufrag:Ab9z', 'a=ice-pwd:Zq8wB2nRk5LmT0vYx3cD7eFg', `a=fingerprint:${o.fingerprint ?? FP_SHA256}`,
    `a=setup:${o.setup ?? 'active'}`, 'a=mid:0', 'a=sendrecv', 'a=msid:s2 t2', 'a=rtcp-mux',
    'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=ssrc:222220 cname:zyxwvuts',
  );
}

/** An SDES phone (RTP/SAVP, two a=crypto lines). */
function sdesPhone(o: { proto?: string; port?: number; addr?: string; crypto?: string[] } = {}): string {
  const addr = o.addr ?? '192.0.2.40';
  return body(
    'v=0', `o=sdes 300 1 IN IP4 ${addr}`, 's=sdes', `c=IN IP4 ${addr}`, 't=0 0',
    `m=audio ${o.port ?? 9000} ${o.proto ?? 'RTP/SAVP'} 0 8`,
    ...(o.crypto ?? [
      'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz',
      'a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj',
    ]),
  );
}

/** Flags Kamailio users pass for browser → legacy and legacy → browser. */
const TO_PLAIN = { ICE: 'remove', DTLS: 'off', 'rtcp-mux': ['demux'], 'transport-protocol': 'RTP/AVP' };
const TO_BROWSER = { ICE: 'force', 'transport-protocol': 'UDP/TLS/RTP/SAVPF', 'rtcp-mux': ['require'] };

SCENARIOS.push(
  { name: 'webrtc-browser-to-plain-audio', about: 'Chrome audio-only (DTLS, ICE, mux, BUNDLE) to a plain phone, and its answer back', steps: [
    offer(chrome(), TO_PLAIN), answer(B({ fmts: '0 101', extra: ['a=rtpmap:101 telephone-event/8000'] })),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0')] },
  { name: 'webrtc-browser-to-plain-av', about: 'Chrome audio+video on one BUNDLE transport to a desk phone', steps: [
    offer(chrome({ video: true }), TO_PLAIN),
    answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 8002 })),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0 1', [['{PORT5}', '{PORT3}'], ['{PORT6}', '{PORT4}'], ['{UFRAG2}', '{UFRAG1}'], ['{PWD2}', '{PWD1}']])] },
  { name: 'webrtc-browser-to-plain-flags', about: 'the same with rtcp-fb and generate-RTCP flags given, SDES-off', steps: [
    offer(chrome(), { ...TO_PLAIN, flags: ['generate-RTCP', 'SDES-off'] }), answer(B({ fmts: '0' }), { 'generate RTCP': 'on' }),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0')] },
  { name: 'webrtc-plain-to-browser', about: 'a plain phone calls a browser: ICE forced, DTLS+SDES offered, mux required', steps: [
    offer(A(), TO_BROWSER), answer(chromeAnswer(), { ICE: 'remove' }),
  ] },
  { name: 'webrtc-plain-to-browser-sdes-off', about: 'plain → browser, SDES-off: DTLS only', steps: [
    offer(A(), { ...TO_BROWSER, SDES: ['off'] }), answer(chromeAnswer()),
  ] },
  { name: 'webrtc-plain-to-browser-passive-answer', about: 'the browser answers setup:passive', steps: [
    offer(A(), { ...TO_BROWSER, flags: ['SDES-off'] }), answer(chromeAnswer({ setup: 'passive' })),
  ] },
  { name: 'dtls-passive', about: 'DTLS=passive on the answer to a browser actpass offer', steps: [
    offer(chrome(), TO_PLAIN), answer(B({ fmts: '0' }), { DTLS: 'passive' }),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0')] },
  { name: 'dtls-passive-offer', about: 'DTLS=passive in the offer (offers still say actpass)', steps: [
    offer(chrome(), { ...TO_PLAIN, DTLS: 'passive' }), answer(B({ fmts: '0' })),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0')] },
  { name: 'dtls-active-offer-to-browser', about: 'DTLS=active when offering to a browser', steps: [
    offer(A(), { ...TO_BROWSER, DTLS: 'active' }), answer(chromeAnswer({ setup: 'passive' })),
  ] },
  { name: 'dtls-reverse-passive', about: 'DTLS-reverse=passive: our role towards the DTLS offerer', steps: [
    offer(chrome(), { ...TO_PLAIN, 'DTLS-reverse': 'passive' }), answer(B({ fmts: '0' })),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0')] },
  { name: 'dtls-browser-to-browser', about: 'browser to browser, everything passes through our own DTLS', steps: [
    offer(chrome()), answer(chromeAnswer({ fmts: '0 126' })),
  ], allow: [...bundleBack(1, '0'), { step: 1, match: /^a=rtpmap:126 \/0$/, replace: null, why: '10.5 writes an empty a=rtpmap for an answered payload type the answer did not map' }] },
  { name: 'dtls-fingerprint-sha1', about: 'DTLS-fingerprint sha-1', steps: [
    offer(A(), { ...TO_BROWSER, 'DTLS-fingerprint': 'sha-1', SDES: ['off'] }), answer(chromeAnswer()),
  ] },
  { name: 'dtls-fingerprint-sha512', about: 'DTLS-fingerprint SHA-512 in upper case, on the answer', steps: [
    offer(chrome(), TO_PLAIN), answer(B({ fmts: '0' }), { 'DTLS-fingerprint': 'SHA-512' }),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0')] },
  { name: 'dtls-fingerprint-sha384-224', about: 'sha-384 on the offer, sha-224 on a re-offer', steps: [
    offer(A(), { ...TO_BROWSER, 'DTLS-fingerprint': 'sha-384', SDES: ['off'] }),
    offer(A({ version: 2 }), { ...TO_BROWSER, 'DTLS-fingerprint': 'sha-224', SDES: ['off'] }),
  ] },
  { name: 'sdes-offer-savp', about: 'plain → RTP/SAVP: full SDES list plus DTLS', steps: [
    offer(A({ fmts: '0 8' }), { 'transport-protocol': 'RTP/SAVP' }),
    answer(sdesPhone({ addr: '198.51.100.40', crypto: ['a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz'] })),
  ] },
  { name: 'sdes-offer-options', about: 'SDES no-, lifetime, pad, unencrypted_srtcp, DTLS off', steps: [
    offer(A({ fmts: '0' }), {
      'transport-protocol': 'RTP/SAVP', DTLS: 'off',
      SDES: ['no-AEAD_AES_256_GCM', 'no-F8_128_HMAC_SHA1_80', 'lifetime', 'pad', 'unencrypted_srtcp'],
      flags: ['SDES-no-NULL_HMAC_SHA1_32', 'SDES-unauthenticated_srtp'],
    }),
  ] },
  { name: 'sdes-offer-flags-only', about: 'SDES-only-… and SDES-no-… given as flags', steps: [
    offer(A({ fmts: '0' }), { 'transport-protocol': 'RTP/SAVP', DTLS: 'off', flags: ['SDES-only-AES_CM_128_HMAC_SHA1_80', 'SDES-no-AEAD_AES_128_GCM', 'SDES-pad'] }),
  ] },
  { name: 'sdes-phone-to-plain', about: 'an SDES phone calls a plain one: crypto answered with our key', steps: [
    offer(sdesPhone(), { 'transport-protocol': 'RTP/AVP' }), answer(B({ fmts: '0 8' })),
  ] },
  { name: 'sdes-phone-to-plain-no-suite', about: 'the first offered suite is excluded: the second is answered', steps: [
    offer(sdesPhone(), { 'transport-protocol': 'RTP/AVP', flags: ['SDES-no-AES_CM_128_HMAC_SHA1_80'] }), answer(B({ fmts: '0' })),
  ] },
  { name: 'sdes-passthrough', about: 'SDES phone to SDES phone without a protocol change', steps: [
    offer(sdesPhone()), answer(sdesPhone({ addr: '198.51.100.40', crypto: ['a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj'] })),
  ] },
  { name: 'sdes-to-browser', about: 'an SDES phone calls a browser', steps: [
    offer(sdesPhone(), TO_BROWSER), answer(chromeAnswer()),
  ] },
  { name: 'osrtp-offer', about: 'OSRTP=offer on RTP/AVP', steps: [
    offer(A({ fmts: '0' }), { OSRTP: ['offer'] }), answer(B({ fmts: '0' })),
  ] },
  { name: 'osrtp-accept', about: 'an OSRTP offer (RTP/AVP with a=crypto) accepted towards a plain phone', steps: [
    offer(sdesPhone({ proto: 'RTP/AVP' }), { OSRTP: ['accept'] }), answer(B({ fmts: '0' })),
  ] },
  { name: 'osrtp-not-accepted', about: 'an OSRTP offer without OSRTP flags', steps: [
    offer(sdesPhone({ proto: 'RTP/AVP' })), answer(B({ fmts: '0' })),
  ] },
  { name: 'avpf-to-avp', about: 'RTP/AVPF to RTP/AVP: rtcp-fb removed?', steps: [
    offer(browser({ video: true }), { 'transport-protocol': 'RTP/AVP', ICE: 'remove', 'rtcp-mux': ['demux'] }),
    answer(videoPhone({ addr: '198.51.100.30', audioPort: 8000, videoPort: 8002 })),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0 1', [['{PORT5}', '{PORT3}'], ['{PORT6}', '{PORT4}'], ['{UFRAG2}', '{UFRAG1}'], ['{PWD2}', '{PWD1}']])] },
  { name: 'avp-to-savpf', about: 'RTP/AVP to RTP/SAVPF (SDES + DTLS offered)', steps: [
    offer(A({ fmts: '0' }), { 'transport-protocol': 'RTP/SAVPF' }),
    answer(sdesPhone({ proto: 'RTP/SAVPF', addr: '198.51.100.40', crypto: ['a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz'] })),
  ] },
  { name: 'avp-to-udptls-savp', about: 'RTP/AVP to UDP/TLS/RTP/SAVP', steps: [
    offer(A({ fmts: '0' }), { 'transport-protocol': 'UDP/TLS/RTP/SAVP' }), answer(chromeAnswer({ fmts: '0' }).replace('UDP/TLS/RTP/SAVPF', 'UDP/TLS/RTP/SAVP')),
  ] },
  { name: 'ice-lite-forward', about: 'ICE-lite forward on a forced ICE offer', steps: [
    offer(A({ fmts: '0' }), { ICE: 'force', 'ICE-lite': 'forward' }), answer(B({ fmts: '0' })),
  ] },
  { name: 'ice-lite-backward', about: 'ICE-lite backward: a=ice-lite in the answer to a browser', steps: [
    offer(chrome(), { 'ICE-lite': 'backward', 'rtcp-mux': ['demux'], 'transport-protocol': 'RTP/AVP', DTLS: 'off', ICE: 'remove' }), answer(B({ fmts: '0' })),
  ], allow: [...noFeedbackTowardsAvp(0), ...bundleBack(1, '0')] },
  { name: 'ice-lite-both', about: 'ICE-lite both', steps: [
    offer(chrome(), { 'ICE-lite': 'both', ICE: 'force' }), answer(chromeAnswer()),
  ], allow: bundleBack(1, '0') },
  { name: 'ice-lite-peer', about: 'the peer is ICE-lite', steps: [
    offer(A({ fmts: '0', session: ['a=ice-lite'], extra: ['a=ice-ufrag:Li7e', 'a=ice-pwd:Lite0pwd1234567890abcdef', 'a=candidate:1 1 UDP 2130706431 192.0.2.10 5004 typ host'] })),
    answer(B({ fmts: '0' })),
  ] },
  { name: 'webrtc-generate-mid-trickle', about: 'plain → browser with generate-mid and trickle-ICE', steps: [
    offer(A({ fmts: '0' }), { ...TO_BROWSER, flags: ['generate-mid', 'trickle-ICE'] }), answer(chromeAnswer({ fmts: '0' })),
  ] },
);
