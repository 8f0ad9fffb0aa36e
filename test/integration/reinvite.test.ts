// Re-INVITE / UPDATE transactions at NG level with real media: a re-offer keeps the committed
// legs relaying beside the new ones, the answer commits, a delete (the failure reply) rolls back
// and keeps the call, a second delete (the BYE) ends it. Packets sent before, during and after
// each step must reach the right party and no other.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { mediaPort, phone, rtp, sdp, type Peer } from '../support/media.js';

type Phone = Awaited<ReturnType<typeof phone>>;

/** Sends one RTP packet from `from` to `port` and asserts it reaches `to` (and, when given, not `not`). */
async function flows(from: Peer, port: number, to: Peer, seq: number, not: Peer[] = [], what = ''): Promise<void> {
  const p = rtp({ seq, ssrc: 0x1000 + from.port });
  await from.send(p, port);
  const got = await to.recv(1000);
  assert.ok(got, `${what}: packet ${seq} did not arrive`);
  assert.deepEqual(got.msg, p, `${what}: packet ${seq} changed`);
  for (const n of not) assert.equal(await n.recv(150), null, `${what}: packet ${seq} also reached a stale destination`);
}

async function silent(from: Peer, port: number, to: Peer[], seq: number, what: string): Promise<void> {
  await from.send(rtp({ seq, ssrc: 0x2000 + from.port }), port);
  for (const n of to) assert.equal(await n.recv(250), null, `${what}: packet ${seq} should have been dropped`);
}

interface Call { d: Daemon; a: Phone; b: Phone; toA: number; toB: number; callId: string; offerSdp: string; answerSdp: string }

async function established(t: TestContext, callId: string, args: string[] = [], flags: string[] = []): Promise<Call> {
  const d = await startDaemon(t, args);
  const a = await phone(t), b = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }), flags });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: b.rtp.port }), flags });
  assert.equal(answer.result, 'ok', JSON.stringify(answer));
  const c = { d, a, b, toB: mediaPort(offer.sdp as string), toA: mediaPort(answer.sdp as string), callId, offerSdp: offer.sdp as string, answerSdp: answer.sdp as string };
  await flows(a.rtp, c.toA, b.rtp, 1, [], 'before');
  await flows(b.rtp, c.toB, a.rtp, 2, [], 'before');
  return c;
}

/** A re-INVITE from A with its media on a new socket (A2), as Kamailio sends it (with to-tag). */
async function reoffer(c: Call, sdpBody: string, extra: Record<string, unknown> = {}) {
  const r = await c.d.ng.cmd({ command: 'offer', 'call-id': c.callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdpBody, ...extra });
  assert.equal(r.result, 'ok', JSON.stringify(r));
  return r.sdp as string;
}

test('re-offer moving the caller: old and new legs relay until the answer commits', async (t) => {
  const c = await established(t, 'ri1');
  const a2 = await phone(t);
  const reSdp = await reoffer(c, sdp({ port: a2.rtp.port, origin: 'test2' }));
  const toB2 = mediaPort(reSdp);
  assert.notEqual(toB2, c.toB, 'a moved party gets a new port towards the other side (rtpengine 10.5)');
  // Pending: the mover already receives at its new address, from B's old and new legs alike.
  await flows(c.b.rtp, c.toB, a2.rtp, 10, [c.a.rtp], 'pending, B on its committed port');
  await flows(c.b.rtp, toB2, a2.rtp, 11, [c.a.rtp], 'pending, B on its new port');
  await flows(a2.rtp, c.toA, c.b.rtp, 12, [], 'pending, A from its new address');
  const q = await c.d.ng.cmd({ command: 'query', 'call-id': 'ri1' }) as any;
  assert.deepEqual(q['pending offer']['from-tag'], 'A');
  const bMedia = q.tags.B.medias[0];
  assert.equal(bMedia.streams[0].leg, 'pending');
  assert.equal(bMedia['committed streams'][0]['local port'], c.toB);
  assert.equal(bMedia['committed streams'][0].leg, 'committed');
  assert.equal(q.tags.A.medias[0].streams[0].leg, 'committed', 'A keeps its port: shared by both states');

  const ans = await c.d.ng.cmd({ command: 'answer', 'call-id': 'ri1', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: c.b.rtp.port }) });
  assert.equal(ans.result, 'ok');
  assert.equal(mediaPort(ans.sdp as string), c.toA);
  await flows(c.b.rtp, toB2, a2.rtp, 20, [c.a.rtp], 'committed');
  await flows(a2.rtp, c.toA, c.b.rtp, 21, [], 'committed');
  await silent(c.b.rtp, c.toB, [a2.rtp, c.a.rtp], 22, 'the old leg stopped');
  const q2 = await c.d.ng.cmd({ command: 'query', 'call-id': 'ri1' }) as any;
  assert.equal(q2['pending offer'], undefined);
  assert.equal(q2.tags.B.medias[0]['committed streams'], undefined);
});

test('a delete while a re-offer is pending (488) rolls back and keeps the call; the next delete (BYE) ends it', async (t) => {
  const c = await established(t, 'ri2');
  const a2 = await phone(t);
  const toB2 = mediaPort(await reoffer(c, sdp({ port: a2.rtp.port, origin: 'test2' })));
  await flows(c.b.rtp, c.toB, a2.rtp, 10, [c.a.rtp], 'pending');
  // What Kamailio's rtpengine_manage() sends for a failure reply to the re-INVITE.
  const del = await c.d.ng.cmd({ command: 'delete', 'call-id': 'ri2', 'from-tag': 'A', 'to-tag': 'B' }) as any;
  assert.equal(del.result, 'ok');
  assert.match(del.warning, /rolled back/);
  assert.ok(del.tags.A && del.totals, 'the reply carries the call figures');
  await flows(c.a.rtp, c.toA, c.b.rtp, 20, [], 'after rollback A→B');
  await flows(c.b.rtp, c.toB, c.a.rtp, 21, [a2.rtp], 'after rollback B→A on the committed address');
  await silent(c.b.rtp, toB2, [c.a.rtp, a2.rtp], 22, 'the pending leg is released');
  const q = await c.d.ng.cmd({ command: 'query', 'call-id': 'ri2' }) as any;
  assert.equal(q.result, 'ok');
  assert.equal(q['pending offer'], undefined);
  assert.equal(q.tags.B.medias[0].streams[0]['local port'], c.toB);
  // The same re-offer again gets its own fresh state (nothing stale from the failed one).
  const bye = await c.d.ng.cmd({ command: 'delete', 'call-id': 'ri2', 'from-tag': 'A', 'to-tag': 'B' }) as any;
  assert.equal(bye.result, 'ok');
  assert.equal(bye.warning, undefined);
  assert.deepEqual(await c.d.ng.cmd({ command: 'query', 'call-id': 'ri2' }), { result: 'error', 'error-reason': 'Unknown call-id' });
  await silent(c.a.rtp, c.toA, [c.b.rtp], 23, 'call ended');
});

test('callee re-INVITE (from-tag = callee) rolls back the same way', async (t) => {
  const c = await established(t, 'ri3');
  const b2 = await phone(t);
  const r = await c.d.ng.cmd({ command: 'offer', 'call-id': 'ri3', 'from-tag': 'B', 'to-tag': 'A', sdp: sdp({ port: b2.rtp.port, origin: 'b2' }) });
  assert.equal(r.result, 'ok');
  const toA2 = mediaPort(r.sdp as string);
  assert.notEqual(toA2, c.toA);
  await flows(c.a.rtp, c.toA, b2.rtp, 10, [c.b.rtp], 'pending, A on its committed port');
  const del = await c.d.ng.cmd({ command: 'delete', 'call-id': 'ri3', 'from-tag': 'B', 'to-tag': 'A' }) as any;
  assert.match(del.warning, /rolled back/);
  await flows(c.a.rtp, c.toA, c.b.rtp, 11, [b2.rtp], 'rolled back');
  await flows(c.b.rtp, c.toB, c.a.rtp, 12, [], 'rolled back');
});

test('explicit delete flags: rollback never ends a call, no-rollback always does', async (t) => {
  const c = await established(t, 'ri4');
  const nothing = await c.d.ng.cmd({ command: 'delete', 'call-id': 'ri4', 'from-tag': 'A', flags: ['rollback'] }) as any;
  assert.equal(nothing.result, 'ok');
  assert.match(nothing.warning, /No pending re-offer/);
  await flows(c.a.rtp, c.toA, c.b.rtp, 10, [], 'kept');
  const a2 = await phone(t);
  await reoffer(c, sdp({ port: a2.rtp.port, origin: 'test2' }));
  const end = await c.d.ng.cmd({ command: 'delete', 'call-id': 'ri4', 'from-tag': 'A', 'to-tag': 'B', flags: ['no-rollback'] }) as any;
  assert.equal(end.result, 'ok');
  assert.equal(end.warning, undefined);
  assert.deepEqual(await c.d.ng.cmd({ command: 'query', 'call-id': 'ri4' }), { result: 'error', 'error-reason': 'Unknown call-id' });
});

test('a failed initial INVITE deletes the whole call (nothing to roll back to)', async (t) => {
  const d = await startDaemon(t);
  const a = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': 'ri5', 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) });
  assert.equal(offer.result, 'ok');
  const del = await d.ng.cmd({ command: 'delete', 'call-id': 'ri5', 'from-tag': 'A' }) as any;
  assert.equal(del.warning, undefined);
  assert.deepEqual(await d.ng.cmd({ command: 'query', 'call-id': 'ri5' }), { result: 'error', 'error-reason': 'Unknown call-id' });
});

test('session refresh: identical re-offer and re-answer keep ports, SDP and o= version', async (t) => {
  const flags = ['replace-origin'];
  const c = await established(t, 'ri6', [], flags);
  const replace = ['origin', 'SDP-version'];
  const again = await c.d.ng.cmd({ command: 'offer', 'call-id': 'ri6', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: c.a.rtp.port }), replace });
  const first = await c.d.ng.cmd({ command: 'query', 'call-id': 'ri6' }) as any;
  assert.equal(first['pending offer'], undefined, 'an identical re-offer opens no transaction');
  const ans = await c.d.ng.cmd({ command: 'answer', 'call-id': 'ri6', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: c.b.rtp.port }), replace });
  assert.equal(mediaPort(again.sdp as string), c.toB);
  assert.equal(mediaPort(ans.sdp as string), c.toA);
  const o = (s: string): string => /^o=.*$/m.exec(s)![0];
  assert.equal(o(again.sdp as string), o(c.offerSdp));
  assert.equal(o(ans.sdp as string), o(c.answerSdp));
  await flows(c.a.rtp, c.toA, c.b.rtp, 10, [], 'after refresh');
  await flows(c.b.rtp, c.toB, c.a.rtp, 11, [], 'after refresh');
});

test('port-latching: a party that moves keeps the ports on both sides', async (t) => {
  const c = await established(t, 'ri7');
  const a2 = await phone(t);
  const toB2 = mediaPort(await reoffer(c, sdp({ port: a2.rtp.port, origin: 'test2' }), { flags: ['port-latching'] }));
  assert.equal(toB2, c.toB);
  await flows(c.b.rtp, c.toB, a2.rtp, 10, [c.a.rtp], 'pending');
  await c.d.ng.cmd({ command: 'answer', 'call-id': 'ri7', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: c.b.rtp.port }) });
  await flows(c.b.rtp, c.toB, a2.rtp, 11, [c.a.rtp], 'committed');
  await flows(a2.rtp, c.toA, c.b.rtp, 12, [], 'committed');
});

test('hold and resume through re-INVITEs stop and restart media in the relay', async (t) => {
  const c = await established(t, 'ri8');
  // A holds (sendonly): B's media to A stops at once, A's music-on-hold still reaches B.
  await reoffer(c, sdp({ port: c.a.rtp.port, extra: ['a=sendonly'], origin: 'hold' }));
  await silent(c.b.rtp, c.toB, [c.a.rtp], 10, 'A on hold');
  await c.d.ng.cmd({ command: 'answer', 'call-id': 'ri8', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: c.b.rtp.port, extra: ['a=recvonly'] }) });
  await silent(c.b.rtp, c.toB, [c.a.rtp], 11, 'A on hold, answered');
  await flows(c.a.rtp, c.toA, c.b.rtp, 12, [], 'hold music');
  // B holds with c=0.0.0.0 inactive: nothing flows either way.
  const r = await c.d.ng.cmd({ command: 'offer', 'call-id': 'ri8', 'from-tag': 'B', 'to-tag': 'A', sdp: sdp({ port: c.b.rtp.port, address: '0.0.0.0', extra: ['a=inactive'], origin: 'b' }) });
  assert.equal(mediaPort(r.sdp as string), c.toA, 'going on hold keeps the ports');
  await c.d.ng.cmd({ command: 'answer', 'call-id': 'ri8', 'from-tag': 'B', 'to-tag': 'A', sdp: sdp({ port: c.a.rtp.port, extra: ['a=inactive'], origin: 'hold2' }) });
  await silent(c.a.rtp, c.toA, [c.b.rtp], 13, 'both inactive');
  await silent(c.b.rtp, c.toB, [c.a.rtp], 14, 'both inactive');
  // Both resume.
  const res = await c.d.ng.cmd({ command: 'offer', 'call-id': 'ri8', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: c.a.rtp.port, origin: 'resume' }) });
  assert.equal(mediaPort(res.sdp as string), c.toB, 'coming back from hold keeps the ports');
  await c.d.ng.cmd({ command: 'answer', 'call-id': 'ri8', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: c.b.rtp.port, origin: 'resumed' }) });
  await flows(c.a.rtp, c.toA, c.b.rtp, 15, [], 'resumed');
  await flows(c.b.rtp, c.toB, c.a.rtp, 16, [], 'resumed');
});

test('a re-offer rolled back after a hold attempt restores two-way audio', async (t) => {
  const c = await established(t, 'ri9');
  await reoffer(c, sdp({ port: c.a.rtp.port, extra: ['a=sendonly'], origin: 'hold' }));
  await silent(c.b.rtp, c.toB, [c.a.rtp], 10, 'hold pending');
  const del = await c.d.ng.cmd({ command: 'delete', 'call-id': 'ri9', 'from-tag': 'A', 'to-tag': 'B' }) as any;
  assert.match(del.warning, /rolled back/);
  await flows(c.b.rtp, c.toB, c.a.rtp, 11, [], 'hold refused');
  await flows(c.a.rtp, c.toA, c.b.rtp, 12, [], 'hold refused');
});
