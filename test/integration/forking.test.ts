// Forking and early media at NG level with real media: parallel forks by via-branch (each its
// own participant and ports, the caller's media to the branch that answered last, the 200 OK
// branch wins), deleting a losing fork, early media from an announcement server followed by the
// real call, and serial forking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon } from '../support/daemon.js';
import { mediaPort, phone, rtp, sdp, type Peer } from '../support/media.js';

async function flows(from: Peer, port: number, to: Peer, seq: number, not: Peer[] = [], what = ''): Promise<void> {
  const p = rtp({ seq, ssrc: 0x1000 + from.port });
  await from.send(p, port);
  const got = await to.recv(1000);
  assert.ok(got, `${what}: packet ${seq} did not arrive`);
  assert.deepEqual(got.msg, p);
  for (const n of not) assert.equal(await n.recv(150), null, `${what}: packet ${seq} also reached a stale destination`);
}

async function silent(from: Peer, port: number, to: Peer[], seq: number, what: string): Promise<void> {
  await from.send(rtp({ seq, ssrc: 0x2000 + from.port }), port);
  for (const n of to) assert.equal(await n.recv(250), null, `${what}: packet ${seq} should have been dropped`);
}

test('parallel forks by via-branch: own ports, media follows the last answer, 200 OK branch wins, loser deleted alone', async (t) => {
  const d = await startDaemon(t);
  const a = await phone(t), b1 = await phone(t), b2 = await phone(t);
  const offer = (branch: string) => d.ng.cmd({ command: 'offer', 'call-id': 'f1', 'from-tag': 'A', 'via-branch': branch, sdp: sdp({ port: a.rtp.port }) });
  const o1 = await offer('z9hG4bK-1'), o2 = await offer('z9hG4bK-2');
  const toB1 = mediaPort(o1.sdp as string), toB2 = mediaPort(o2.sdp as string);
  assert.notEqual(toB1, toB2, 'each fork has its own ports');
  const answer = (tag: string, branch: string, p: Peer) => d.ng.cmd({
    command: 'answer', 'call-id': 'f1', 'from-tag': 'A', 'to-tag': tag, 'via-branch': branch, sdp: sdp({ port: p.port }),
  });
  // 183 from branch 1: early media both ways with it.
  const e1 = await answer('T1', 'z9hG4bK-1', b1.rtp);
  const toA = mediaPort(e1.sdp as string);
  await flows(a.rtp, toA, b1.rtp, 1, [b2.rtp], '183 from fork 1');
  await flows(b1.rtp, toB1, a.rtp, 2, [], '183 from fork 1');
  // 183 from branch 2: the caller's media goes there only; fork 1's media no longer reaches the caller.
  const e2 = await answer('T2', 'z9hG4bK-2', b2.rtp);
  assert.equal(mediaPort(e2.sdp as string), toA);
  await flows(a.rtp, toA, b2.rtp, 3, [b1.rtp], '183 from fork 2');
  await flows(b2.rtp, toB2, a.rtp, 4, [], '183 from fork 2');
  await silent(b1.rtp, toB1, [a.rtp], 5, 'fork 1 is no longer the caller\'s peer');
  // 200 OK from branch 1 with the same SDP as its 183: branch 1 wins.
  await answer('T1', 'z9hG4bK-1', b1.rtp);
  await flows(a.rtp, toA, b1.rtp, 6, [b2.rtp], '200 from fork 1');
  await flows(b1.rtp, toB1, a.rtp, 7, [], '200 from fork 1');
  await silent(b2.rtp, toB2, [a.rtp], 8, 'losing fork');
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'f1' }) as any;
  assert.deepEqual(Object.keys(q.tags).sort(), ['A', 'T1', 'T2']);
  assert.equal(q.tags.T2['via-branch'], 'z9hG4bK-2');
  // The proxy deletes the losing branch: only its ports go.
  const del = await d.ng.cmd({ command: 'delete', 'call-id': 'f1', 'from-tag': 'A', 'via-branch': 'z9hG4bK-2' });
  assert.equal(del.result, 'ok');
  const q2 = await d.ng.cmd({ command: 'query', 'call-id': 'f1' }) as any;
  assert.deepEqual(Object.keys(q2.tags).sort(), ['A', 'T1']);
  await silent(b2.rtp, toB2, [a.rtp, b1.rtp], 9, 'deleted fork');
  await flows(a.rtp, toA, b1.rtp, 10, [b2.rtp], 'call goes on');
  await flows(b1.rtp, toB1, a.rtp, 11, [], 'call goes on');
});

test('a losing fork can be deleted by its to-tag', async (t) => {
  const d = await startDaemon(t);
  const a = await phone(t), b1 = await phone(t), b2 = await phone(t);
  const o1 = await d.ng.cmd({ command: 'offer', 'call-id': 'f2', 'from-tag': 'A', 'via-branch': 'v1', sdp: sdp({ port: a.rtp.port }) });
  const o2 = await d.ng.cmd({ command: 'offer', 'call-id': 'f2', 'from-tag': 'A', 'via-branch': 'v2', sdp: sdp({ port: a.rtp.port }) });
  await d.ng.cmd({ command: 'answer', 'call-id': 'f2', 'from-tag': 'A', 'to-tag': 'T2', 'via-branch': 'v2', sdp: sdp({ port: b2.rtp.port }) });
  const fin = await d.ng.cmd({ command: 'answer', 'call-id': 'f2', 'from-tag': 'A', 'to-tag': 'T1', 'via-branch': 'v1', sdp: sdp({ port: b1.rtp.port }) });
  const toA = mediaPort(fin.sdp as string), toB1 = mediaPort(o1.sdp as string), toB2 = mediaPort(o2.sdp as string);
  const del = await d.ng.cmd({ command: 'delete', 'call-id': 'f2', 'from-tag': 'A', 'to-tag': 'T2' }) as any;
  assert.equal(del.result, 'ok');
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'f2' }) as any;
  assert.deepEqual(Object.keys(q.tags).sort(), ['A', 'T1']);
  await silent(b2.rtp, toB2, [a.rtp], 1, 'deleted fork');
  await flows(a.rtp, toA, b1.rtp, 2, [b2.rtp], 'established branch');
  await flows(b1.rtp, toB1, a.rtp, 3, [], 'established branch');
});

test('early media from an announcement server, then the real call elsewhere: media switches cleanly', async (t) => {
  const d = await startDaemon(t);
  const a = await phone(t), ann = await phone(t), real = await phone(t);
  const o = await d.ng.cmd({ command: 'offer', 'call-id': 'f3', 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) });
  const toB = mediaPort(o.sdp as string);
  // 183 with SDP from the announcement server (its own to-tag), on the proxy's only branch.
  const e = await d.ng.cmd({ command: 'answer', 'call-id': 'f3', 'from-tag': 'A', 'to-tag': 'ANN', sdp: sdp({ port: ann.rtp.port, origin: 'ann' }) });
  const toA = mediaPort(e.sdp as string);
  await flows(ann.rtp, toB, a.rtp, 1, [], 'announcement');
  await flows(a.rtp, toA, ann.rtp, 2, [], 'announcement');
  // 200 OK from the real callee (application server behind the proxy, other to-tag and address).
  const fin = await d.ng.cmd({ command: 'answer', 'call-id': 'f3', 'from-tag': 'A', 'to-tag': 'REAL', sdp: sdp({ port: real.rtp.port, origin: 'real' }) });
  const toA2 = mediaPort(fin.sdp as string);
  await flows(real.rtp, toB, a.rtp, 3, [], 'real call');
  await flows(a.rtp, toA2, real.rtp, 4, [ann.rtp], 'real call');
  if (toA2 !== toA) await silent(a.rtp, toA, [ann.rtp, real.rtp], 5, 'the early-media port towards the caller stopped');
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'f3' }) as any;
  assert.deepEqual(Object.keys(q.tags).sort(), ['A', 'REAL']);
  assert.equal(q.tags.REAL.medias[0].streams[0].endpoint.port, real.rtp.port);
});

test('serial forking: a later branch after a failed one reuses nothing stale', async (t) => {
  const d = await startDaemon(t);
  const a = await phone(t), b1 = await phone(t), b2 = await phone(t);
  const o1 = await d.ng.cmd({ command: 'offer', 'call-id': 'f4', 'from-tag': 'A', 'via-branch': 'v1', sdp: sdp({ port: a.rtp.port }) });
  const toB1 = mediaPort(o1.sdp as string);
  // Branch 1 rang and sent early media, then failed (486); the proxy tries branch 2.
  await d.ng.cmd({ command: 'answer', 'call-id': 'f4', 'from-tag': 'A', 'to-tag': 'T1', 'via-branch': 'v1', sdp: sdp({ port: b1.rtp.port }) });
  const o2 = await d.ng.cmd({ command: 'offer', 'call-id': 'f4', 'from-tag': 'A', 'via-branch': 'v2', sdp: sdp({ port: a.rtp.port }) });
  const toB2 = mediaPort(o2.sdp as string);
  assert.notEqual(toB2, toB1, 'the new branch gets its own ports');
  const fin = await d.ng.cmd({ command: 'answer', 'call-id': 'f4', 'from-tag': 'A', 'to-tag': 'T2', 'via-branch': 'v2', sdp: sdp({ port: b2.rtp.port }) });
  const toA = mediaPort(fin.sdp as string);
  await flows(a.rtp, toA, b2.rtp, 1, [b1.rtp], 'branch 2');
  await flows(b2.rtp, toB2, a.rtp, 2, [], 'branch 2');
  await silent(b1.rtp, toB1, [a.rtp], 3, 'failed branch');
  await d.ng.cmd({ command: 'delete', 'call-id': 'f4', 'from-tag': 'A', 'via-branch': 'v1' });
  await flows(a.rtp, toA, b2.rtp, 4, [b1.rtp], 'branch 2 after the failed branch is deleted');
});
