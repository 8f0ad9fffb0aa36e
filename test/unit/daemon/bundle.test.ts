// BUNDLE towards a WebRTC offerer (daemon/session/bundle.ts): the SDP we write back (group,
// mids, one port, one ICE/DTLS transport), the plans of the shared socket (routes by payload
// type and SSRC), and the call table's bookkeeping of a shared socket (closed once, counted once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { applyAnswer, applyOffer, type OfferAnswerContext } from '../../../daemon/session/offer-answer.js';
import { CallTable, type SessionConfig } from '../../../daemon/session/call-table.js';
import type { Call } from '../../../daemon/session/model.js';
import { deleteOptions, offerAnswerOptions, Params } from '../../../control/params.js';
import type { NgDict } from '../../../control/codec.js';
import type { MediaPlane, OpenedPair, SocketId, SocketPlan, SocketStats } from '../../../media/plane.js';

const lines = (...l: string[]): string => l.join('\r\n') + '\r\n';
const FP = 'sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08';

/** Chrome with bundlePolicy 'max-bundle': one transport on every m= line, DTLS, ICE, mux. */
function chrome(o: { video?: boolean; group?: string | null; videoPort?: number } = {}): string {
  const transport = (port: number): string[] => [
    'c=IN IP4 203.0.113.7', 'a=rtcp:9 IN IP4 0.0.0.0',
    `a=candidate:1 1 udp 2122260223 203.0.113.7 ${port} typ host generation 0`,
    'a=ice-ufrag:Fx7q', 'a=ice-pwd:p9sRrFjeuK0DHgr1QLwYpMeZ', 'a=ice-options:trickle', `a=fingerprint:${FP}`, 'a=setup:actpass',
  ];
  const group = o.group === undefined ? `BUNDLE 0${o.video ? ' 1' : ''}` : o.group;
  return lines(
    'v=0', 'o=- 46117 2 IN IP4 127.0.0.1', 's=-', 't=0 0', ...(group === null ? [] : [`a=group:${group}`]),
    'a=msid-semantic: WMS s',
    'm=audio 50000 UDP/TLS/RTP/SAVPF 111 0 126', ...transport(50000), 'a=mid:0', 'a=sendrecv', 'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:126 telephone-event/8000', 'a=ssrc:111110 cname:x',
    ...(o.video ? [
      `m=video ${o.videoPort ?? 50000} UDP/TLS/RTP/SAVPF 96 97`, ...transport(o.videoPort ?? 50000), 'a=mid:1', 'a=sendrecv', 'a=rtcp-mux',
      'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 nack pli', 'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96', 'a=ssrc:111111 cname:x',
      'a=ssrc:111112 cname:x',
    ] : []),
  );
}

/** A plain desk phone, audio (and video unless rejected: port 0). */
function phone(o: { video?: boolean; videoPort?: number; audioPort?: number } = {}): string {
  return lines(
    'v=0', 'o=desk 200 1 IN IP4 198.51.100.30', 's=desk', 'c=IN IP4 198.51.100.30', 't=0 0',
    `m=audio ${o.audioPort ?? 8000} RTP/AVP 0 126`, 'a=rtpmap:126 telephone-event/8000',
    ...(o.video === false ? [] : [`m=video ${o.videoPort ?? 8002} RTP/AVP 96`, 'a=rtpmap:96 VP8/90000']),
  );
}

const TO_PLAIN: NgDict = { ICE: 'remove', DTLS: 'off', 'rtcp-mux': ['demux'], 'transport-protocol': 'RTP/AVP' };
const TO_BROWSER: NgDict = { ICE: 'force', 'transport-protocol': 'UDP/TLS/RTP/SAVPF', 'rtcp-mux': ['require'] };

const opts = (cmd: 'offer' | 'answer', sdp: string, extra: NgDict = {}, tags: NgDict = {}) =>
  offerAnswerOptions(new Params({ 'call-id': 'c', 'from-tag': 'a', ...(cmd === 'answer' ? { 'to-tag': 'b' } : {}), ...tags, sdp, ...extra }), cmd);

const mPorts = (sdp: string): number[] => [...sdp.matchAll(/^m=\S+ (\d+) /gm)].map((m) => Number(m[1]));
const sections = (sdp: string): string[] => sdp.split(/\r\n(?=m=)/).slice(1);
const attrs = (section: string, name: string): string[] =>
  section.split('\r\n').filter((l) => l.startsWith(`a=${name}`));

function fixture(): { ctx: OfferAnswerContext; call: Call; plans: Map<number, SocketPlan>; ports: Map<number, number>; installs: SocketPlan[][] } {
  let next = 40000;
  let id = 1;
  const plans = new Map<number, SocketPlan>();
  const installs: SocketPlan[][] = [];
  const ports = new Map<number, number>(); // socket id -> local port (one address)
  const plane = {
    async openPair(address: string) {
      const port = next; next += 2;
      const rtp = id++; const rtcp = id++;
      ports.set(rtp, port); ports.set(rtcp, port + 1);
      return { rtp, rtcp, address, port };
    },
    install(ps: readonly SocketPlan[]) { installs.push([...ps]); for (const p of ps) plans.set(p.id, p); },
  } as unknown as MediaPlane;
  const ctx: OfferAnswerContext = {
    plane, sipSource: false, nowMs: 0, retired: [], warn: () => undefined,
    interfaces: [{ name: 'default', addresses: [{ address: '127.0.0.1', advertised: '127.0.0.1', family: 4 }] }] as unknown as OfferAnswerContext['interfaces'],
    fingerprint: (h) => `${h === 'sha-256' ? 'AA:BB' : 'CC:DD'}`,
  };
  const call: Call = { callId: 'c', createdMs: 0, lastSignalMs: 0, answeredMs: null, participants: [], nextParticipantId: 1, deleteAtMs: null, deleteReason: null };
  return { ctx, call, plans, ports, installs };
}

const rtpAt = (f: ReturnType<typeof fixture>, port: number): SocketPlan =>
  f.plans.get([...f.ports].find(([sid, p]) => p === port && f.plans.get(sid)?.kind === 'rtp')![0])!;

test('Chrome audio+video BUNDLE offer: separate ports to the plain side, one transport and the group back', async () => {
  const f = fixture();
  const offer = await applyOffer(f.ctx, f.call, opts('offer', chrome({ video: true }), TO_PLAIN));
  assert.doesNotMatch(offer, /a=group/, 'the plain side gets no BUNDLE');
  const [pa, pv] = mPorts(offer);
  assert.notEqual(pa, pv, 'the plain side gets a port per m= line');
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', phone()));
  assert.match(answer, /^t=0 0\r\na=group:BUNDLE 0 1\r\n/m);
  const [ba, bv] = mPorts(answer);
  assert.equal(ba, bv, 'both m= lines on one port');
  const [sa, sv] = sections(answer);
  assert.deepEqual(attrs(sa!, 'mid'), ['a=mid:0']);
  assert.deepEqual(attrs(sv!, 'mid'), ['a=mid:1']);
  for (const n of ['ice-ufrag', 'ice-pwd', 'candidate', 'fingerprint', 'setup', 'rtcp:', 'rtcp-mux']) {
    assert.deepEqual(attrs(sv!, n), attrs(sa!, n), `same ${n} on both`);
    assert.ok(attrs(sa!, n).length > 0, n);
  }
  assert.match(sa!, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 0 126/m);

  // One plan for the shared socket, routing each media to its plain socket, and back.
  const shared = rtpAt(f, ba!);
  assert.equal(f.installs.at(-1)!.filter((p) => p.id === shared.id).length, 1, 'the shared socket is planned once');
  const plainAudio = rtpAt(f, pa!), plainVideo = rtpAt(f, pv!);
  assert.deepEqual(shared.bundle!.map((r) => [r.payloadTypes, r.ssrcs, r.sink, r.forward]), [
    [[111, 0, 126], [111110], plainAudio.id, true],
    [[96, 97], [111111, 111112], plainVideo.id, true],
  ]);
  assert.equal(shared.sink, plainAudio.id, 'the plan\'s own sink is the first route\'s');
  assert.deepEqual(shared.payloadTypes, [111, 0, 126, 96, 97]);
  assert.equal(shared.crypto?.dtls?.role, 'client', 'DTLS on the shared socket (we answered setup:active)');
  assert.equal(shared.ice?.localUfrag, /a=ice-ufrag:(\S+)/.exec(answer)![1]);
  assert.deepEqual(shared.clockRates, [111, 48000, 0, 8000, 126, 8000, 96, 90000, 97, 90000]);
  assert.equal(plainAudio.sink, shared.id);
  assert.equal(plainVideo.sink, shared.id, 'video from the plain side leaves the bundle socket too');
  assert.equal(plainVideo.rtcpSink, shared.id, 'RTCP towards the browser is muxed on it');
  assert.equal(plainAudio.bundle ?? null, null);
  assert.deepEqual(plainVideo.clockRates, [96, 90000]);
});

test('the answerer rejects the video: it leaves the group, its route forwards nothing', async () => {
  const f = fixture();
  await applyOffer(f.ctx, f.call, opts('offer', chrome({ video: true }), TO_PLAIN));
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', phone({ videoPort: 0 })));
  assert.match(answer, /^a=group:BUNDLE 0\r$/m);
  assert.equal(mPorts(answer)[1], 0);
  const shared = rtpAt(f, mPorts(answer)[0]!);
  assert.deepEqual(shared.bundle!.map((r) => r.forward), [true, false]);
});

test('Chrome audio only: the group with one mid comes back', async () => {
  const f = fixture();
  await applyOffer(f.ctx, f.call, opts('offer', chrome(), TO_PLAIN));
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', phone({ video: false })));
  assert.match(answer, /^a=group:BUNDLE 0\r$/m);
  assert.equal(rtpAt(f, mPorts(answer)[0]!).bundle!.length, 1);
});

test('Firefox-style max-bundle: a bundle-only video (port 0, no transport of its own) joins the bundle', async () => {
  const f = fixture();
  const sdp = chrome().replace('a=group:BUNDLE 0', 'a=group:BUNDLE 0 1') + lines(
    'm=video 0 UDP/TLS/RTP/SAVPF 120', 'c=IN IP4 0.0.0.0', 'a=bundle-only', 'a=mid:1', 'a=sendrecv', 'a=rtcp-mux',
    'a=rtpmap:120 VP8/90000', 'a=ssrc:222 cname:x').replace(/\r\n$/, '\r\n');
  const offer = await applyOffer(f.ctx, f.call, opts('offer', sdp, TO_PLAIN));
  const [pa, pv] = mPorts(offer);
  assert.ok(pv! > 0 && pv !== pa, 'the plain side gets a real video port');
  assert.doesNotMatch(offer, /bundle-only/);
  assert.match(sections(offer)[1]!, /^c=IN IP4 127\.0\.0\.1\r$/m, 'our address, not the bundle-only 0.0.0.0 (no hold)');
  assert.match(sections(offer)[1]!, /^a=sendrecv\r$/m);
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', phone({ video: true }).replace('RTP/AVP 96', 'RTP/AVP 120').replace('rtpmap:96', 'rtpmap:120')));
  assert.match(answer, /^a=group:BUNDLE 0 1\r$/m);
  assert.doesNotMatch(answer, /bundle-only/);
  const [ba, bv] = mPorts(answer);
  assert.equal(ba, bv, 'the video answers on the bundle port');
  const [sa, sv] = sections(answer);
  for (const n of ['ice-ufrag', 'candidate', 'fingerprint', 'setup', 'rtcp-mux']) {
    assert.deepEqual(attrs(sv!, n), attrs(sa!, n), `same ${n} on both`);
    assert.ok(attrs(sa!, n).length > 0, n);
  }
  const shared = rtpAt(f, ba!);
  assert.deepEqual(shared.bundle!.map((r) => [r.payloadTypes, r.sink, r.forward]), [
    [[111, 0, 126], rtpAt(f, pa!).id, true], [[120], rtpAt(f, pv!).id, true],
  ]);
});

test('a plain RTP/AVP offer with a group line is not bundled (rtpengine 10.5 output)', async () => {
  const f = fixture();
  const sdp = lines('v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.10', 't=0 0', 'a=group:BUNDLE 0 1',
    'm=audio 4000 RTP/AVP 0', 'a=mid:0', 'm=video 4002 RTP/AVP 96', 'a=mid:1', 'a=rtpmap:96 VP8/90000');
  await applyOffer(f.ctx, f.call, opts('offer', sdp));
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', phone()));
  assert.doesNotMatch(answer, /a=group/);
  const [a, v] = mPorts(answer);
  assert.notEqual(a, v);
  assert.equal(rtpAt(f, a!).bundle ?? null, null);
});

test('a re-offer from the plain side towards the browser keeps the group, the mids and the one port', async () => {
  const f = fixture();
  await applyOffer(f.ctx, f.call, opts('offer', chrome({ video: true }), TO_PLAIN));
  const answer = await applyAnswer(f.ctx, f.call, opts('answer', phone()));
  // The phone moves (new address): towards the browser the bundle transport stays.
  const moved = phone({ audioPort: 9000, videoPort: 9002 }).replace(/198\.51\.100\.30/g, '198.51.100.31');
  const reoffer = await applyOffer(f.ctx, f.call, opts('offer', moved, TO_BROWSER, { 'from-tag': 'b', 'to-tag': 'a' }));
  assert.match(reoffer, /^a=group:BUNDLE 0 1\r$/m);
  assert.deepEqual(mPorts(reoffer), mPorts(answer), 'the same bundle port on both m= lines as before');
  const [sa, sv] = sections(reoffer);
  assert.deepEqual(attrs(sa!, 'mid'), ['a=mid:0']);
  assert.deepEqual(attrs(sv!, 'mid'), ['a=mid:1']);
  assert.deepEqual(attrs(sv!, 'ice-ufrag'), attrs(sa!, 'ice-ufrag'));
  assert.deepEqual(attrs(sv!, 'candidate'), attrs(sa!, 'candidate'));
  assert.deepEqual(f.ctx.retired, [], 'no socket of the bundle is retired');
});

// ---- the call table: a shared socket is closed once and counted once --------------------------

class CountingPlane implements MediaPlane {
  readonly open = new Set<SocketId>();
  readonly closed: SocketId[] = [];
  readonly packets = new Map<SocketId, number>();
  last: SocketPlan[] = [];
  private next = 1;
  async openPair(address: string): Promise<OpenedPair> {
    const rtp = this.next++, rtcp = this.next++;
    this.open.add(rtp).add(rtcp);
    return { rtp, rtcp, address, port: 30000 + 2 * rtp };
  }
  install(plans: readonly SocketPlan[]): void { this.last = [...plans]; }
  close(ids: readonly SocketId[]): void {
    for (const id of ids) { this.closed.push(id); this.open.delete(id); }
  }
  stats(ids: readonly SocketId[]): SocketStats[] {
    return ids.filter((id) => this.open.has(id)).map((id) => ({
      id, localAddress: '127.0.0.1', localPort: 30000 + id, remote: null, confirmed: false, packets: this.packets.get(id) ?? 0,
      bytes: 0, errors: 0, dropped: 0, lastPacketMs: 0, ssrc: null,
    }));
  }
  ports() { return []; }
  onEvent(): void { /* no events */ }
  async shutdown(): Promise<void> { this.open.clear(); }
}

function table() {
  const cfg: SessionConfig = {
    interfaces: [{ name: 'default', addresses: [{ address: '127.0.0.1', family: 4, advertised: '127.0.0.1' }] }],
    timeouts: { timeoutS: 60, silentTimeoutS: 3600, finalTimeoutS: 0, offerTimeoutS: 3600, deleteDelayS: 0 },
    maxSessions: -1, sipSource: false, fingerprint: () => 'AA:BB',
  };
  const plane = new CountingPlane();
  const t = new CallTable(cfg, plane, pino({ level: 'silent' }), { nowMs: 1_700_000_000_000 });
  const cmd = (command: 'offer' | 'answer', from: string, to: string | null, sdp: string, extra: NgDict = {}) => {
    const o = offerAnswerOptions(new Params({ command, 'call-id': 'c', 'from-tag': from, ...(to ? { 'to-tag': to } : {}), sdp, ...extra } as NgDict), command);
    return command === 'offer' ? t.offer(o) : t.answer(o);
  };
  return { t, plane, cmd };
}

test('call table: the bundle socket is opened once, counted once, and closed exactly once', async () => {
  const { t, plane, cmd } = table();
  await cmd('offer', 'a', null, chrome({ video: true }), TO_PLAIN);
  const { sdp } = await cmd('answer', 'a', 'b', phone());
  assert.equal(plane.open.size, 6, 'three pairs: the bundle, plain audio, plain video');
  const shared = plane.last.find((p) => p.bundle)!;
  assert.equal(plane.last.filter((p) => p.id === shared.id).length, 1);
  plane.packets.set(shared.id, 10);
  const snap = t.query({ callId: 'c', fromTag: null, toTag: null });
  assert.equal(snap.totals.rtp.packets, 10, 'the shared socket counts once');
  const browser = snap.participants.find((p) => p.tag === 'a')!;
  assert.deepEqual(browser.medias.map((m) => m.streams[0]!.local?.port), [mPorts(sdp)[0], mPorts(sdp)[0]]);
  assert.deepEqual(browser.medias.map((m) => m.streams[0]!.stats.packets), [10, 0]);
  assert.equal(t.mediaTotals().rtp.packets, 10);

  // A re-offer from the browser keeping the bundle: nothing opened or closed.
  await cmd('offer', 'a', 'b', chrome({ video: true }), TO_PLAIN);
  await cmd('answer', 'a', 'b', phone());
  assert.equal(plane.open.size, 6);
  assert.equal(plane.closed.length, 0);

  // The browser stops bundling: its video gets its own pair; the shared one stays with the audio.
  // (Its video moved to another port, so the plain side's video gets a new port too: rtpengine's rule.)
  await cmd('offer', 'a', 'b', chrome({ video: true, group: null, videoPort: 50002 }), TO_PLAIN);
  const { sdp: unbundled } = await cmd('answer', 'a', 'b', phone());
  assert.doesNotMatch(unbundled, /a=group/);
  assert.notEqual(mPorts(unbundled)[0], mPorts(unbundled)[1]);
  assert.equal(mPorts(unbundled)[0], mPorts(sdp)[0], 'the audio keeps the bundle\'s socket');
  assert.equal(plane.open.size, 8);
  assert.equal(plane.closed.length, 2, 'only the plain video pair was replaced');
  assert.ok(!plane.closed.includes(shared.id));

  // And bundles again: the video's own pair goes (once), the audio's is shared again.
  await cmd('offer', 'a', 'b', chrome({ video: true }), TO_PLAIN);
  const { sdp: rebundled } = await cmd('answer', 'a', 'b', phone());
  assert.equal(mPorts(rebundled)[0], mPorts(rebundled)[1]);
  assert.equal(mPorts(rebundled)[0], mPorts(sdp)[0]);
  assert.equal(plane.open.size, 6);
  assert.ok(!plane.closed.includes(shared.id));
  assert.equal(plane.last.find((p) => p.bundle)?.id, shared.id);

  await t.delete(deleteOptions(new Params({ command: 'delete', 'call-id': 'c' } as NgDict)));
  assert.equal(plane.open.size, 0);
  assert.equal(new Set(plane.closed).size, plane.closed.length, 'no socket closed twice');
  assert.equal(plane.closed.length, 12, 'every pair ever opened (6), closed once');
});
