// The socket plans the WebRTC offer/answer produces: SDES keys on the right sockets (rx = what
// the party wrote in its a=crypto, tx = what we wrote to it), DTLS roles and fingerprints, ICE
// credentials/candidates/roles, RTCP feedback and generation; and the NG keys that drive them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyAnswer, applyOffer, type OfferAnswerContext } from '../../../daemon/session/offer-answer.js';
import type { Call } from '../../../daemon/session/model.js';
import { offerAnswerOptions, Params } from '../../../control/params.js';
import type { NgDict } from '../../../control/codec.js';
import type { MediaPlane, SocketPlan } from '../../../media/plane.js';
import { parseCrypto } from '../../../daemon/session/sdes.js';

const FP = 'AA:BB:CC';

function fixture(): { ctx: OfferAnswerContext; call: Call; plans: Map<number, SocketPlan>; ports: Map<number, string> } {
  let next = 40000;
  let id = 1;
  const plans = new Map<number, SocketPlan>();
  const ports = new Map<number, string>(); // socket id -> "address port"
  const plane = {
    async openPair(address: string) {
      const port = next; next += 2;
      const rtp = id++; const rtcp = id++;
      ports.set(rtp, `${address} ${port}`); ports.set(rtcp, `${address} ${port + 1}`);
      return { rtp, rtcp, address, port };
    },
    install(ps: readonly SocketPlan[]) { for (const p of ps) plans.set(p.id, p); },
  } as unknown as MediaPlane;
  const ctx: OfferAnswerContext = {
    plane, sipSource: false, nowMs: 0, retired: [], warn: () => undefined,
    interfaces: [{ name: 'default', addresses: [
      { address: '127.0.0.1', advertised: '127.0.0.1', family: 4 }, { address: '::1', advertised: '::1', family: 6 },
    ] }] as unknown as OfferAnswerContext['interfaces'],
    fingerprint: (h) => `${h}:${FP}`,
  };
  const call: Call = { callId: 'c', createdMs: 0, lastSignalMs: 0, answeredMs: null, participants: [], nextParticipantId: 1, deleteAtMs: null, deleteReason: null };
  return { ctx, call, plans, ports };
}

const opts = (cmd: 'offer' | 'answer', sdp: string, extra: NgDict = {}) =>
  offerAnswerOptions(new Params({ 'call-id': 'c', 'from-tag': 'a', ...(cmd === 'answer' ? { 'to-tag': 'b' } : {}), sdp, ...extra }), cmd);

const lines = (...l: string[]): string => l.join('\r\n') + '\r\n';
const KEY_A = 'WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz';
const sdesPhone = lines('v=0', 'o=- 1 1 IN IP4 192.0.2.40', 's=-', 'c=IN IP4 192.0.2.40', 't=0 0',
  'm=audio 9000 RTP/SAVP 0', `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${KEY_A}`);
const plain = (port: number, extra: string[] = []): string => lines('v=0', 'o=- 2 1 IN IP4 198.51.100.20', 's=-',
  'c=IN IP4 198.51.100.20', 't=0 0', `m=audio ${port} RTP/AVP 0`, ...extra);
const portOf = (sdp: string): number => Number(/m=audio (\d+)/.exec(sdp)![1]);
/** The RTP plan of the socket with this local port. */
function planAt(f: ReturnType<typeof fixture>, address: string, port: number): SocketPlan {
  const id = [...f.ports].find(([, v]) => v === `${address} ${port}`)![0];
  return f.plans.get(id)!;
}
const b64 = (k: { key: string; salt: string }): string =>
  Buffer.concat([Buffer.from(k.key, 'base64'), Buffer.from(k.salt, 'base64')]).toString('base64').replace(/=+$/, '');

test('SDES phone to plain: the phone-facing socket decrypts with its key and encrypts with ours', async () => {
  const f = fixture();
  const out = await applyOffer(f.ctx, f.call, opts('offer', sdesPhone, { 'transport-protocol': 'RTP/AVP' }));
  assert.doesNotMatch(out, /a=crypto|a=fingerprint/);
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', plain(6000)));
  const ours = /a=crypto:(.*)/.exec(answer)![1]!;
  assert.match(answer, /m=audio \d+ RTP\/SAVP 0/);
  const phoneSide = planAt(f, '127.0.0.1', portOf(answer));
  assert.equal(b64(phoneSide.crypto!.sdes!.rx), KEY_A, 'rx: the key the phone wrote');
  assert.equal(b64(phoneSide.crypto!.sdes!.tx), b64({ key: parseCrypto(ours)!.keys[0]!.key.toString('base64'), salt: parseCrypto(ours)!.keys[0]!.salt.toString('base64') }), 'tx: the key we wrote to it');
  assert.equal(phoneSide.crypto!.sdes!.rx.suite, 'AES_CM_128_HMAC_SHA1_80');
  assert.equal(phoneSide.crypto!.dtls, null);
  const plainSide = planAt(f, '127.0.0.1', portOf(out));
  assert.equal(plainSide.crypto ?? null, null, 'the plain phone gets plain RTP');
});

test('plain to SAVP: our offered key is tx, the answerer\'s line is rx, on the answerer-facing socket', async () => {
  const f = fixture();
  const out = await applyOffer(f.ctx, f.call, opts('offer', plain(5004), { 'transport-protocol': 'RTP/SAVP', DTLS: 'off' }));
  assert.equal((out.match(/a=crypto:/g) ?? []).length, 12);
  assert.doesNotMatch(out, /a=setup/);
  const offered7 = /a=crypto:7 (AES_CM_128_HMAC_SHA1_80 inline:\S+)/.exec(out)![1]!;
  const KEY_B = 'NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj';
  await applyAnswer(f.ctx, f.call, opts('answer', lines('v=0', 'o=- 2 1 IN IP4 198.51.100.40', 's=-', 'c=IN IP4 198.51.100.40', 't=0 0',
    'm=audio 6000 RTP/SAVP 0', `a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:${KEY_B}`)));
  const bSide = planAt(f, '127.0.0.1', portOf(out));
  assert.equal(b64(bSide.crypto!.sdes!.rx), KEY_B);
  assert.equal(`AES_CM_128_HMAC_SHA1_80 inline:${b64(bSide.crypto!.sdes!.tx)}`, offered7);
});

test('browser to plain: setup:active (DTLS client) towards an actpass browser by default, passive (server) with DTLS=passive', async () => {
  for (const [dtls, setup, role] of [[undefined, 'active', 'client'], ['passive', 'passive', 'server']] as const) {
    const f = fixture();
    const browser = lines('v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
      'm=audio 50000 UDP/TLS/RTP/SAVPF 0', 'c=IN IP4 203.0.113.7', 'a=rtcp-mux', 'a=mid:0', 'a=rtcp-fb:0 nack',
      'a=candidate:1 1 udp 2122260223 203.0.113.7 50000 typ host', 'a=ice-ufrag:Fx7q', 'a=ice-pwd:p9sRrFjeuK0DHgr1QLwYpMeZ',
      'a=fingerprint:sha-256 11:22:33', 'a=setup:actpass');
    const out = await applyOffer(f.ctx, f.call, opts('offer', browser, { ICE: 'remove', DTLS: 'off', 'rtcp-mux': ['demux'], 'transport-protocol': 'RTP/AVP', flags: ['generate-RTCP'] }));
    assert.doesNotMatch(out, /a=(crypto|setup|fingerprint|candidate|ice-|group|rtcp-mux|rtcp-fb)/);
    const answer = await applyAnswer(f.ctx, f.call, opts('answer', plain(6000), dtls ? { DTLS: dtls } : {}));
    assert.match(answer, new RegExp(`a=setup:${setup}\\r\\na=fingerprint:sha-256 sha-256:${FP}`));
    assert.match(answer, /a=candidate:\S+ 1 UDP 2130706175 ::1 /, 'a host candidate on the second address');
    const browserSide = planAt(f, '127.0.0.1', portOf(answer));
    assert.deepEqual(browserSide.crypto!.dtls, { role, fingerprint: { hash: 'sha-256', value: '11:22:33' } });
    assert.equal(browserSide.ice!.remoteUfrag, 'Fx7q');
    assert.equal(browserSide.ice!.controlling, false, 'the browser offered: it controls');
    assert.equal(browserSide.ice!.candidates.length, 1);
    assert.equal(browserSide.rtcpFeedback, true);
    assert.equal(browserSide.generateRtcp, true);
    const ipv6Port = Number(/a=candidate:\S+ 1 UDP \d+ ::1 (\d+)/.exec(answer)![1]);
    assert.equal(planAt(f, '::1', ipv6Port).ice!.localUfrag, browserSide.ice!.localUfrag, 'the ::1 socket answers checks too');
    const plainSide = planAt(f, '127.0.0.1', portOf(out));
    assert.equal(plainSide.rtcpFeedback, false, 'no RTCP feedback towards the AVP phone');
    assert.equal(plainSide.ice ?? null, null);
    assert.equal(plainSide.crypto ?? null, null);
  }
});

test('plain to browser: we control ICE towards the answering browser; its setup:active makes us the DTLS server', async () => {
  const f = fixture();
  const out = await applyOffer(f.ctx, f.call, opts('offer', plain(5004), { ICE: 'force', 'transport-protocol': 'UDP/TLS/RTP/SAVPF', 'rtcp-mux': ['require'], 'DTLS-fingerprint': 'SHA-1' }));
  assert.match(out, /a=setup:actpass\r\na=fingerprint:sha-1 sha-1:AA:BB:CC/);
  await applyAnswer(f.ctx, f.call, opts('answer', lines('v=0', 'o=- 7 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    'm=audio 50010 UDP/TLS/RTP/SAVPF 0', 'c=IN IP4 203.0.113.8', 'a=rtcp-mux',
    'a=candidate:2222 1 udp 2122260223 203.0.113.8 50010 typ host', 'a=ice-ufrag:Ab9z', 'a=ice-pwd:Zq8wB2nRk5LmT0vYx3cD7eFg',
    'a=fingerprint:sha-256 44:55', 'a=setup:active')));
  const bSide = planAt(f, '127.0.0.1', portOf(out));
  assert.equal(bSide.crypto!.dtls!.role, 'server');
  assert.equal(bSide.crypto!.sdes, null);
  assert.equal(bSide.ice!.controlling, true);
  assert.deepEqual(bSide.ice!.candidates.map((c) => `${c.address}:${c.port}/${c.type}`), ['203.0.113.8:50010/host']);
});

test('NG keys: SDES list and flags, OSRTP, DTLS, ICE-lite, generate RTCP', () => {
  const o = opts('offer', plain(5004), {
    SDES: ['no-AEAD_AES_256_GCM', 'lifetime', 'unencrypted_srtcp'], OSRTP: ['offer'], DTLS: 'disable', 'DTLS-reverse': 'passive',
    'DTLS-fingerprint': 'SHA-384', 'ICE-lite': 'bkw', 'generate RTCP': 'on', flags: ['SDES-pad', 'SDES-no-NULL_HMAC_SHA1_32', 'SDES-unauthenticated_srtp'],
  }).webrtc!;
  assert.deepEqual(o.sdesNo, ['AEAD_AES_256_GCM', 'NULL_HMAC_SHA1_32']);
  assert.deepEqual(o.sdesParams, ['UNENCRYPTED_SRTCP', 'UNAUTHENTICATED_SRTP']);
  assert.equal(o.sdesPad, true); assert.equal(o.sdesLifetime, true); assert.equal(o.osrtpOffer, true);
  assert.equal(o.dtls, 'off'); assert.equal(o.dtlsReverse, 'passive'); assert.equal(o.dtlsFingerprint, 'sha-384');
  assert.equal(o.iceLite, 'backward'); assert.equal(o.generateRtcp, true);
  assert.equal(opts('offer', plain(5004), { SDES: 'off' }).webrtc!.sdesOff, true);
  assert.equal(opts('offer', plain(5004)).webrtc!.generateRtcp, null);
});
