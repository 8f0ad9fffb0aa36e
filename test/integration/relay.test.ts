import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon } from '../support/daemon.js';
import { connAddress, mediaPort, phone, rtcpRR, rtp, sdp } from '../support/media.js';

async function call(t: Parameters<typeof startDaemon>[0], callId = 'c1') {
  const d = await startDaemon(t);
  const a = await phone(t), b = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: b.rtp.port }) });
  assert.equal(answer.result, 'ok', JSON.stringify(answer));
  return { d, a, b, toB: mediaPort(offer.sdp as string), toA: mediaPort(answer.sdp as string), offer, answer };
}

test('offer/answer relays RTP and RTCP both ways, byte for byte', async (t) => {
  const { a, b, toA, toB, offer } = await call(t);
  assert.equal(connAddress(offer.sdp as string), '127.0.0.1');
  const p1 = rtp({ ssrc: 0x1234, seq: 1 });
  await a.rtp.send(p1, toA);
  const got = await b.rtp.recv();
  assert.ok(got, 'B received nothing');
  assert.deepEqual(got.msg, p1);
  assert.equal(got.from.port, toB, 'B receives from the port it was told to send to (symmetric RTP)');
  const p2 = rtp({ ssrc: 0x5678, seq: 9, pt: 8 });
  await b.rtp.send(p2, toB);
  assert.deepEqual((await a.rtp.recv())?.msg, p2);
  await a.rtcp.send(rtcpRR(0x1234), toA + 1);
  assert.deepEqual((await b.rtcp.recv())?.msg, rtcpRR(0x1234));
  await b.rtcp.send(rtcpRR(0x5678), toB + 1);
  assert.deepEqual((await a.rtcp.recv())?.msg, rtcpRR(0x5678));
});

test('query and delete report per-stream counters in rtpengine shape', async (t) => {
  const { d, a, b, toA } = await call(t, 'c2');
  for (let i = 0; i < 5; i++) await a.rtp.send(rtp({ seq: i }), toA);
  for (let i = 0; i < 5; i++) assert.ok(await b.rtp.recv());
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'c2' }) as any;
  assert.equal(q.result, 'ok');
  const aStreams = q.tags.A.medias[0].streams;
  assert.equal(aStreams[0].stats.packets, 5);
  assert.equal(aStreams[0].stats.bytes, 5 * 172);
  assert.deepEqual(aStreams[0].endpoint, { family: 'IPv4', address: '127.0.0.1', port: a.rtp.port });
  assert.ok(aStreams[0].flags.includes('confirmed'));
  assert.equal(q.totals.RTP.packets, 5);
  const del = await d.ng.cmd({ command: 'delete', 'call-id': 'c2', 'from-tag': 'A' }) as any;
  assert.equal(del.result, 'ok');
  assert.equal(del.totals.RTP.packets, 5);
  const again = await d.ng.cmd({ command: 'query', 'call-id': 'c2' });
  assert.deepEqual(again, { result: 'error', 'error-reason': 'Unknown call-id' });
  // After the delete the relay no longer forwards.
  await a.rtp.send(rtp({ seq: 99 }), toA);
  assert.equal(await b.rtp.recv(300), null);
});

test('a single junk datagram from a third address does not redirect audio', async (t) => {
  const { a, b, toA, toB } = await call(t, 'c3');
  const evil = await phone(t);
  // B has not sent anything yet (silent party): an attacker sprays its port.
  await evil.rtp.send(Buffer.alloc(0), toB);
  await evil.rtp.send(rtp({ ssrc: 0xbad, seq: 1 }), toB);
  await a.rtp.send(rtp({ seq: 1 }), toA);
  const got = await b.rtp.recv();
  assert.ok(got, 'B still gets A\'s audio');
  assert.equal(await evil.rtp.recv(200), null, 'the attacker gets nothing');
});

test('a NATed phone is learned from a few valid RTP packets', async (t) => {
  const d = await startDaemon(t);
  const a = await phone(t), b = await phone(t), nat = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': 'n1', 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) });
  // B's SDP names a private address that is never reachable; B really sends from `nat`.
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': 'n1', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: 7078, address: '127.0.0.99' }) });
  const toB = mediaPort(offer.sdp as string), toA = mediaPort(answer.sdp as string);
  for (let i = 0; i < 3; i++) await nat.rtp.send(rtp({ ssrc: 0x777, seq: 10 + i }), toB);
  for (let i = 0; i < 3; i++) assert.ok(await a.rtp.recv(), 'A hears B');
  await a.rtp.send(rtp({ seq: 5 }), toA);
  assert.ok(await nat.rtp.recv(), 'B is reached at its learned address');
  void b;
});
