// WorkerMediaPlane (media/worker-plane.ts) against a real media worker: the pairs it keeps open
// ahead. Real sockets on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { SocketPlan } from '../../../media/plane.js';
import { WorkerMediaPlane } from '../../../media/worker-plane.js';
import { boundUdpPorts as held, until } from '../../support/net.js';

test('a media worker keeps pairs open ahead; openPair takes one of them at once; they count as free; more come once half are taken', async (t) => {
  // 300 ports (150 pairs) in the kernel's non-ephemeral range, away from the daemon tests' ranges.
  const min = 9400, max = 9699;
  const plane = await WorkerMediaPlane.start({ min, max }, 1, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  // The worker opens its ahead pairs right after it is ready: 32 pairs, 64 ports (and its socket
  // thread binds the 16 pairs after those, media/relay.ts's prebind window: 96 in all).
  let last = 0;
  await until(async () => (last = held(min, max).length) === 96, () => `the pairs opened ahead (${last} ports held)`);
  const before = held(min, max);
  assert.deepEqual(plane.ports(), [{ address: '127.0.0.1', free: 150, total: 150 }], 'ready pairs count as free (pairs, not ports)');
  const pair = await plane.openPair('127.0.0.1');
  assert.ok(before.includes(pair.port) && before.includes(pair.port + 1), 'the pair came from the ready ones');
  assert.equal(plane.ports()[0]!.free, 149);
  // Once half of them are taken, the worker opens as many as were taken, in one go (not one per
  // pair taken, each a wake-up of the worker): 16 taken, 32 ready again, 16 prebound after them.
  const taken = [pair];
  for (let k = 1; k < 16; k++) taken.push(await plane.openPair('127.0.0.1'));
  assert.equal(plane.ports()[0]!.free, 134);
  await until(() => held(min, max).length === 2 * (16 + 32 + 16), () => `sixteen more opened ahead (${held(min, max).length} held, ${plane.ports()[0]!.free} free)`);
  assert.equal(plane.ports()[0]!.free, 150 - 16, 'the new ready pairs count as free');
  plane.close(taken.flatMap((p) => [p.rtp, p.rtcp]));
});

test('a plan installed without waking the worker is in force for the first datagram after it', async (t) => {
  // The plans go into the worker's ring (media/tape-ring.ts) and the worker is woken a while
  // later (here a second); a datagram that comes first makes the worker read the ring before
  // handling it.
  const min = 9700, max = 9799;
  const plane = await WorkerMediaPlane.start({ min, max }, 1, ['127.0.0.1'], { wakeMs: 1000 });
  const phoneA = dgram.createSocket('udp4'), phoneB = dgram.createSocket('udp4');
  t.after(async () => { phoneA.close(); phoneB.close(); await plane.shutdown(); });
  await Promise.all([phoneA, phoneB].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
  const a = await plane.openPair('127.0.0.1'), b = await plane.openPair('127.0.0.1');
  const plan = (id: number, remote: number, sink: number): SocketPlan => ({
    id, kind: 'rtp', remote: { address: '127.0.0.1', port: remote }, sink, forward: true, asymmetric: false,
    strictSource: false, mediaHandover: false, payloadTypes: [], rtcpMux: false, rtcpSink: null,
  });
  const got = new Promise<Buffer>((resolve) => phoneB.once('message', (m) => resolve(m)));
  plane.install([plan(a.rtp, phoneA.address().port, b.rtp), plan(b.rtp, phoneB.address().port, a.rtp)]);
  await null; // the microtask that writes the ring has run
  phoneA.send(Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), a.port, '127.0.0.1');
  const first = await Promise.race([got, new Promise<null>((r) => setTimeout(() => r(null), 500))]);
  assert.ok(first !== null, 'the first datagram was forwarded by the plan installed just before it');
  plane.close([a.rtp, a.rtcp, b.rtp, b.rtcp]);
});

test('pairs freed by closes the worker has not read yet stay free when it counts its ports before reading them', async (t) => {
  // The worker reads the ring (here) a second after it was written; meanwhile it answers opens
  // asked for before the closes with its own count of free ports, which does not have them yet.
  const min = 9800, max = 10099;
  const plane = await WorkerMediaPlane.start({ min, max }, 1, ['127.0.0.1'], { wakeMs: 1000 });
  t.after(() => plane.shutdown());
  await until(() => held(min, max).length === 96, 'the pairs opened ahead');
  const taken = [];
  for (let k = 0; k < 16; k++) taken.push(await plane.openPair('127.0.0.1')); // the 16th asks for 16 more
  // Until the worker has opened them, this thread takes no message: its answers wait.
  const deadline = Date.now() + 5000;
  while (held(min, max).length !== 2 * (16 + 32 + 16) && Date.now() < deadline) { /* the worker binds */ }
  plane.close(taken.slice(0, 4).flatMap((p) => [p.rtp, p.rtcp]));
  await null; // the closes are in the ring, after the opens
  assert.equal(plane.ports()[0]!.free, 150 - 16 + 4);
  await until(() => plane.readyPairs('127.0.0.1') === 32, 'the worker answered the 16 opens');
  assert.equal(plane.ports()[0]!.free, 150 - 16 + 4, 'its answers counted the ports without the closes');
  await until(() => held(min, max).length === 2 * (16 + 32 + 16) - 8, 'the worker closed the 4 pairs');
  await until(() => plane.ports()[0]!.free === 150 - 16 + 4, 'its count after the closes');
  plane.close(taken.slice(4).flatMap((p) => [p.rtp, p.rtcp]));
});

test('a socket with ICE shows no remote until ICE selects one, as the worker has it, not the SDP address', async (t) => {
  const min = 10100, max = 10199;
  const plane = await WorkerMediaPlane.start({ min, max }, 1, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  const a = await plane.openPair('127.0.0.1'), b = await plane.openPair('127.0.0.1');
  const ice = { localUfrag: 'abcd', localPwd: 'p'.repeat(22), remoteUfrag: 'wxyz', remotePwd: 'q'.repeat(22), controlling: true, lite: false, candidates: [] };
  plane.install([{
    id: a.rtp, kind: 'rtp', remote: { address: '127.0.0.1', port: 40000 }, sink: b.rtp, forward: true, asymmetric: false,
    strictSource: false, mediaHandover: false, payloadTypes: [], rtcpMux: true, rtcpSink: null, ice,
  }]);
  // Right after the install the main thread has the SDP's address; the worker's answer corrects it.
  await until(() => plane.stats([a.rtp])[0]!.remote === null, 'the worker\'s state for the ICE socket');
  assert.equal(plane.stats([a.rtp])[0]!.confirmed, false);
  plane.close([a.rtp, a.rtcp, b.rtp, b.rtcp]);
});

test('two workers whose ports fit the calls exactly carry every call: a new call goes where no pair is promised to another', async (t) => {
  // 100 pairs, 50 in each worker, for 50 calls of two pairs each (one side's, then the other's),
  // 16 under way at a time as NG offers are: a call's second pair is asked for a turn after its
  // first, so the other calls' choices come in between. Choosing by free pairs alone sent new
  // calls to a worker whose last pairs its half-open calls were owed, and those calls failed.
  const min = 10200, max = 10399;
  const plane = await WorkerMediaPlane.start({ min, max }, 2, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  await until(() => held(min, max).length === 2 * (2 * 32 + 2 * 16), 'the pairs opened ahead');
  let next = 0;
  const failures: string[] = [];
  const taken: number[] = [];
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < 50) {
      const call = `call-${next++}`;
      try {
        const a = await plane.openPair('127.0.0.1', call);
        await new Promise((r) => setImmediate(r));
        const b = await plane.openPair('127.0.0.1', call);
        taken.push(a.rtp, a.rtcp, b.rtp, b.rtcp);
      } catch (e) { failures.push(`${call}: ${(e as Error).message}`); }
    }
  }));
  assert.deepEqual(failures, []);
  assert.equal(plane.ports()[0]!.free, 0);
  plane.close(taken);
});
