// generate-RTCP in the session: on by default towards a browser (UDP/TLS/RTP/SAVPF) party, not
// towards the plain phone; `generate RTCP: off` turns it off, the flag turns it on for both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyAnswer, applyOffer, type OfferAnswerContext } from '../../../daemon/session/offer-answer.js';
import type { Call } from '../../../daemon/session/model.js';
import { offerAnswerOptions, Params } from '../../../control/params.js';
import type { NgDict } from '../../../control/codec.js';
import type { MediaPlane, SocketPlan } from '../../../media/plane.js';

function fixture(): { ctx: OfferAnswerContext; call: Call; plans: Map<number, SocketPlan>; ports: Map<number, string> } {
  let next = 40000, id = 1;
  const plans = new Map<number, SocketPlan>();
  const ports = new Map<number, string>();
  const plane = {
    async openPair(address: string) {
      const port = next; next += 2;
      const rtp = id++, rtcp = id++;
      ports.set(rtp, `${address} ${port}`); ports.set(rtcp, `${address} ${port + 1}`);
      return { rtp, rtcp, address, port };
    },
    install(ps: readonly SocketPlan[]) { for (const p of ps) plans.set(p.id, p); },
  } as unknown as MediaPlane;
  const ctx: OfferAnswerContext = {
    plane, sipSource: false, nowMs: 0, retired: [], warn: () => undefined,
    interfaces: [{ name: 'default', addresses: [{ address: '127.0.0.1', advertised: '127.0.0.1', family: 4 }] }] as unknown as OfferAnswerContext['interfaces'],
    fingerprint: (h) => `${h}:AA:BB`,
  };
  const call: Call = { callId: 'c', createdMs: 0, lastSignalMs: 0, answeredMs: null, participants: [], nextParticipantId: 1, deleteAtMs: null, deleteReason: null };
  return { ctx, call, plans, ports };
}

const opts = (cmd: 'offer' | 'answer', sdp: string, extra: NgDict = {}) =>
  offerAnswerOptions(new Params({ 'call-id': 'c', 'from-tag': 'a', ...(cmd === 'answer' ? { 'to-tag': 'b' } : {}), sdp, ...extra }), cmd);
const lines = (...l: string[]): string => l.join('\r\n') + '\r\n';
const browser = lines('v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 50000 UDP/TLS/RTP/SAVPF 0', 'c=IN IP4 203.0.113.7',
  'a=rtcp-mux', 'a=mid:0', 'a=candidate:1 1 udp 2122260223 203.0.113.7 50000 typ host', 'a=ice-ufrag:Fx7q',
  'a=ice-pwd:p9sRrFjeuK0DHgr1QLwYpMeZ', 'a=fingerprint:sha-256 11:22:33', 'a=setup:actpass');
const plain = lines('v=0', 'o=- 2 1 IN IP4 198.51.100.20', 's=-', 'c=IN IP4 198.51.100.20', 't=0 0', 'm=audio 6000 RTP/AVP 0');
const toPlain = { ICE: 'remove', 'rtcp-mux': ['demux'], 'transport-protocol': 'RTP/AVP' };

function planAt(f: ReturnType<typeof fixture>, sdp: string): SocketPlan {
  const port = Number(/m=audio (\d+)/.exec(sdp)![1]);
  return f.plans.get([...f.ports].find(([, v]) => v === `127.0.0.1 ${port}`)![0])!;
}

test('generate-RTCP: on by default towards the browser only', async () => {
  const f = fixture();
  const out = await applyOffer(f.ctx, f.call, opts('offer', browser, toPlain));
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', plain));
  assert.equal(planAt(f, answer).generateRtcp, true, 'browser-facing socket');
  assert.equal(planAt(f, out).generateRtcp, false, 'phone-facing socket');
});

test('generate-RTCP: `generate RTCP: off` turns the default off; the flag turns it on both ways', async () => {
  const off = fixture();
  await applyOffer(off.ctx, off.call, opts('offer', browser, { ...toPlain, 'generate RTCP': 'off' }));
  const a1 = await applyAnswer(off.ctx, off.call, opts('answer', plain, { 'generate RTCP': 'off' }));
  assert.equal(planAt(off, a1).generateRtcp, false);
  const on = fixture();
  const o2 = await applyOffer(on.ctx, on.call, opts('offer', browser, { ...toPlain, flags: ['generate-RTCP'] }));
  const a2 = await applyAnswer(on.ctx, on.call, opts('answer', plain));
  assert.equal(planAt(on, a2).generateRtcp, true);
  assert.equal(planAt(on, o2).generateRtcp, true);
});
