// WorkerMediaPlane (media/worker-plane.ts) against a real media worker: the pairs it keeps open
// ahead. Real sockets on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerMediaPlane } from '../../../media/worker-plane.js';
import { boundUdpPorts as held, until } from '../../support/net.js';

test('a media worker keeps pairs open ahead; openPair takes one of them at once; they count as free', async (t) => {
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
  // The worker opens one more to stay 32 ahead.
  await until(() => held(min, max).length === 98, 'one more opened ahead');
  plane.close([pair.rtp, pair.rtcp]);
});
