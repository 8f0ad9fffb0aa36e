// Endpoint learning and the per-stream flags (strict-source, asymmetric, media-handover,
// port-latching), junk handling, RTCP and rtcp-mux, IPv6 and hold, against the real daemon.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { connAddress, mediaPort, phone, rtcpRR, rtp, sdp, type Peer } from '../support/media.js';

type Phone = Awaited<ReturnType<typeof phone>>;

interface Setup {
  d: Daemon;
  a: Phone;
  b: Phone;
  /** Our ports: A sends to `toA`, B sends to `toB`. */
  toA: number;
  toB: number;
  offerSdp: string;
  answerSdp: string;
}

async function setup(t: TestContext, o: {
  flags?: string[]; args?: string[]; address?: string; aExtra?: string[]; bExtra?: string[]; bAddress?: string; bPort?: number;
} = {}): Promise<Setup> {
  const address = o.address ?? '127.0.0.1';
  const d = await startDaemon(t, o.args ?? []);
  const a = await phone(t, address), b = await phone(t, address);
  const flags = o.flags ?? [];
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': 'L', 'from-tag': 'A', flags,
    sdp: sdp({ address, port: a.rtp.port, extra: o.aExtra }) });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': 'L', 'from-tag': 'A', 'to-tag': 'B', flags,
    sdp: sdp({ address: o.bAddress ?? address, port: o.bPort ?? b.rtp.port, extra: o.bExtra }) });
  assert.equal(answer.result, 'ok', JSON.stringify(answer));
  return { d, a, b, toA: mediaPort(answer.sdp as string), toB: mediaPort(offer.sdp as string),
    offerSdp: offer.sdp as string, answerSdp: answer.sdp as string };
}

let seq = 100;

/** Sends one RTP packet from `from` to our port and says whether `to` got exactly it. */
async function passes(from: Peer, port: number, to: Peer, o: { ssrc?: number; address?: string } = {}): Promise<boolean> {
  to.drain();
  const p = rtp({ ssrc: o.ssrc ?? 0xa1, seq: seq++ });
  await from.send(p, port, o.address);
  const got = await to.recv(400);
  return got !== null && got.msg.equals(p);
}

/** `n` valid RTP packets of one SSRC, as a phone (or a forger) would send them. */
async function burst(from: Peer, port: number, ssrc: number, n: number, address?: string): Promise<void> {
  for (let i = 0; i < n; i++) await from.send(rtp({ ssrc, seq: seq++ }), port, address);
}

async function rtpStream(d: Daemon, tag: string): Promise<any> {
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'L' }) as any;
  assert.equal(q.result, 'ok', JSON.stringify(q));
  return q.tags[tag].medias[0].streams[0];
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));

test('without flags a confirmed endpoint never moves, whatever a third party sends', async (t) => {
  const { d, a, b, toA, toB } = await setup(t);
  const evil = await phone(t);
  assert.ok(await passes(b.rtp, toB, a.rtp), 'B confirms its SDP address by sending');
  await burst(evil.rtp, toB, 0xbad, 10);
  await settle();
  assert.ok(await passes(a.rtp, toA, b.rtp), 'A still reaches B');
  assert.equal(await evil.rtp.recv(200), null, 'the forger gets nothing');
  assert.deepEqual((await rtpStream(d, 'B')).endpoint, { family: 'IPv4', address: '127.0.0.1', port: b.rtp.port });
});

test('a silent party is not redirected by fewer than three valid packets, nor by mixed SSRCs', async (t) => {
  const { a, b, toA, toB } = await setup(t);
  const evil = await phone(t);
  await burst(evil.rtp, toB, 0xbad, 2);
  await evil.rtp.send(rtp({ ssrc: 0xbae, seq: seq++ }), toB);
  await evil.rtp.send(rtp({ ssrc: 0xbaf, seq: seq++ }), toB);
  await settle();
  assert.ok(await passes(a.rtp, toA, b.rtp), 'A still reaches B at its SDP address');
  assert.equal(await evil.rtp.recv(200), null);
});

test('junk, STUN, short and empty datagrams are counted as errors and dropped, from anyone', async (t) => {
  const { d, a, b, toA, toB } = await setup(t);
  const evil = await phone(t);
  const stun = Buffer.from('000100002112a442000000000000000000000000', 'hex'); // RFC 5389 binding request
  const junk = [Buffer.alloc(0), Buffer.from([0x80, 0x00, 0x00]), stun, Buffer.alloc(172, 0x41), Buffer.from('hello world!')];
  for (const j of junk) { await evil.rtp.send(j, toB); await b.rtp.send(j, toB); }
  await settle();
  assert.equal(await a.rtp.recv(200), null, 'nothing reached A');
  const st = await rtpStream(d, 'B');
  assert.equal(st.stats.errors, 2 * junk.length);
  assert.ok(!st.flags.includes('confirmed'), 'junk from the SDP address does not confirm it');
  // Well-formed RTP with a payload type nobody negotiated, from a stranger: not media of this call.
  for (let i = 0; i < 5; i++) await evil.rtp.send(rtp({ ssrc: 0xbad, seq: seq++, pt: 96 }), toB);
  await settle();
  assert.equal(await a.rtp.recv(200), null);
  assert.equal((await rtpStream(d, 'B')).stats.errors, 2 * junk.length + 5);
  assert.ok(await passes(a.rtp, toA, b.rtp), 'A still reaches B');
});

test('strict-source: once confirmed, packets from any other source are dropped', async (t) => {
  const { d, a, b, toA, toB } = await setup(t, { flags: ['strict-source'] });
  const evil = await phone(t);
  assert.ok(await passes(b.rtp, toB, a.rtp));
  assert.equal(await passes(evil.rtp, toB, a.rtp, { ssrc: 0xbad }), false, 'a stranger\'s valid RTP is not forwarded');
  await burst(evil.rtp, toB, 0xbad, 5);
  await settle();
  assert.ok(await passes(b.rtp, toB, a.rtp), 'B still gets through');
  assert.ok(await passes(a.rtp, toA, b.rtp), 'and still receives');
  const st = await rtpStream(d, 'B');
  assert.ok(st.flags.includes('strict source address'), JSON.stringify(st.flags));
  assert.ok(st.stats.packets >= 8);
});

test('without strict-source a stranger\'s valid RTP is forwarded but does not take over', async (t) => {
  const { a, b, toA, toB } = await setup(t);
  const evil = await phone(t);
  assert.ok(await passes(b.rtp, toB, a.rtp));
  assert.ok(await passes(evil.rtp, toB, a.rtp, { ssrc: 0xbad }), 'forwarded, as rtpengine does');
  assert.ok(await passes(a.rtp, toA, b.rtp));
});

test('a NATed party is learned after three valid packets; asymmetric never learns', async (t) => {
  // B's SDP names an address it does not receive on (127.0.0.99 is never bound by anyone here).
  for (const asymmetric of [false, true]) {
    await t.test(asymmetric ? 'asymmetric' : 'default', async (t) => {
      const { d, a, toA, toB } = await setup(t, { flags: asymmetric ? ['asymmetric'] : [], bAddress: '127.0.0.99', bPort: 7078 });
      const nat = await phone(t);
      assert.ok(await passes(nat.rtp, toB, a.rtp, { ssrc: 0x77 }), 'valid media from the NAT is forwarded to A');
      await burst(nat.rtp, toB, 0x77, 4);
      await settle();
      a.rtp.drain();
      const reached = await passes(a.rtp, toA, nat.rtp);
      assert.equal(reached, !asymmetric, asymmetric ? 'asymmetric: B is reached at its SDP address only' : 'B is reached at its learned address');
      const st = await rtpStream(d, 'B');
      assert.deepEqual(st.endpoint, asymmetric ? { family: 'IPv4', address: '127.0.0.99', port: 7078 }
        : { family: 'IPv4', address: '127.0.0.1', port: nat.rtp.port });
      if (asymmetric) assert.ok((await d.ng.cmd({ command: 'query', 'call-id': 'L' }) as any).tags.B.medias[0].flags.includes('asymmetric'));
    });
  }
});

test('media-handover: a new source takes over after three valid packets, not after one or two', async (t) => {
  const { d, a, b, toA, toB } = await setup(t, { flags: ['media-handover'] });
  const moved = await phone(t);
  assert.ok(await passes(b.rtp, toB, a.rtp), 'B confirmed at its SDP address');
  await burst(moved.rtp, toB, 0x99, 2);
  await settle();
  assert.ok(await passes(a.rtp, toA, b.rtp), 'two packets are not enough');
  assert.equal(await moved.rtp.recv(100), null);
  await burst(moved.rtp, toB, 0x99, 1);
  await settle();
  assert.ok(await passes(a.rtp, toA, moved.rtp), 'the third packet of one SSRC moves B');
  assert.equal(await b.rtp.recv(100), null, 'nothing to the old address');
  const st = await rtpStream(d, 'B');
  assert.ok(st.flags.includes('media handover'), JSON.stringify(st.flags));
  assert.equal(st.endpoint.port, moved.rtp.port);
});

test('RTCP is relayed both ways on its own ports and learned like RTP', async (t) => {
  const { d, a, b, toA, toB } = await setup(t, { bAddress: '127.0.0.99', bPort: 7078 });
  await a.rtcp.send(rtcpRR(0x1), toA + 1);
  assert.equal(await b.rtcp.recv(200), null, 'B\'s RTCP address is not known yet: nothing sent');
  for (let i = 0; i < 3; i++) await b.rtcp.send(rtcpRR(0x2), toB + 1);
  for (let i = 0; i < 3; i++) assert.deepEqual((await a.rtcp.recv())?.msg, rtcpRR(0x2), 'A gets B\'s RTCP');
  await a.rtcp.send(rtcpRR(0x1), toA + 1);
  assert.deepEqual((await b.rtcp.recv())?.msg, rtcpRR(0x1), 'B\'s learned RTCP address is used');
  assert.equal(await a.rtp.recv(100), null, 'RTCP never leaks onto the RTP port');
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'L' }) as any;
  assert.equal(q.totals.RTCP.packets, 5);
});

test('rtcp-mux on both sides: RTP and RTCP share one port each way', async (t) => {
  const { a, b, toA, toB, offerSdp, answerSdp } = await setup(t, { aExtra: ['a=rtcp-mux'], bExtra: ['a=rtcp-mux'] });
  assert.match(offerSdp, /^a=rtcp-mux\r?$/m);
  assert.match(answerSdp, /^a=rtcp-mux\r?$/m);
  assert.ok(await passes(a.rtp, toA, b.rtp));
  assert.ok(await passes(b.rtp, toB, a.rtp));
  await a.rtp.send(rtcpRR(0x1), toA);
  assert.deepEqual((await b.rtp.recv())?.msg, rtcpRR(0x1), 'A\'s RTCP arrives on B\'s RTP port');
  await b.rtp.send(rtcpRR(0x2), toB);
  assert.deepEqual((await a.rtp.recv())?.msg, rtcpRR(0x2));
  assert.equal(await a.rtcp.recv(100), null);
  assert.equal(await b.rtcp.recv(100), null);
});

test('IPv6: --interface=::1 relays an IPv6 call', async (t) => {
  const { d, a, b, toA, toB, offerSdp } = await setup(t, { args: ['--interface=::1'], address: '::1' });
  assert.equal(connAddress(offerSdp), '::1');
  assert.ok(await passes(a.rtp, toA, b.rtp, { address: '::1' }));
  assert.ok(await passes(b.rtp, toB, a.rtp, { address: '::1' }));
  await a.rtcp.send(rtcpRR(0x1), toA + 1, '::1');
  assert.deepEqual((await b.rtcp.recv())?.msg, rtcpRR(0x1));
  assert.equal((await rtpStream(d, 'B')).endpoint.family, 'IPv6');
});

test('hold: sendonly lets media flow one way only, inactive none', async (t) => {
  const { d, a, b, toA, toB } = await setup(t, { aExtra: ['a=sendonly'], bExtra: ['a=recvonly'] });
  assert.ok(await passes(a.rtp, toA, b.rtp), 'the holding party is still heard (music on hold)');
  assert.equal(await passes(b.rtp, toB, a.rtp), false, 'the held party is not');
  const re = await d.ng.cmd({ command: 'offer', 'call-id': 'L', 'from-tag': 'A',
    sdp: sdp({ port: a.rtp.port, extra: ['a=inactive'], origin: 'test 1 2' }) });
  assert.equal(re.result, 'ok');
  const an = await d.ng.cmd({ command: 'answer', 'call-id': 'L', 'from-tag': 'A', 'to-tag': 'B',
    sdp: sdp({ port: b.rtp.port, extra: ['a=inactive'], origin: 'test 1 2' }) });
  assert.equal(an.result, 'ok');
  assert.equal(await passes(a.rtp, mediaPort(an.sdp as string), b.rtp), false);
  assert.equal(await passes(b.rtp, mediaPort(re.sdp as string), a.rtp), false);
  // Off hold: both ways again.
  const re2 = await d.ng.cmd({ command: 'offer', 'call-id': 'L', 'from-tag': 'A', sdp: sdp({ port: a.rtp.port, origin: 'test 1 3' }) });
  const an2 = await d.ng.cmd({ command: 'answer', 'call-id': 'L', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: b.rtp.port, origin: 'test 1 3' }) });
  assert.ok(await passes(a.rtp, mediaPort(an2.sdp as string), b.rtp));
  assert.ok(await passes(b.rtp, mediaPort(re2.sdp as string), a.rtp));
  void toB;
});

test('port-latching: a re-offer from a moved party keeps our port only with the flag', async (t) => {
  for (const latching of [false, true]) {
    await t.test(latching ? 'port-latching' : 'default', async (t) => {
      const flags = latching ? ['port-latching'] : [];
      const { d, toB } = await setup(t, { flags });
      const re = await d.ng.cmd({ command: 'offer', 'call-id': 'L', 'from-tag': 'A', flags,
        sdp: sdp({ port: 5000, origin: 'test 1 2' }) });
      assert.equal(re.result, 'ok');
      assert.equal(mediaPort(re.sdp as string) === toB, latching);
    });
  }
});
