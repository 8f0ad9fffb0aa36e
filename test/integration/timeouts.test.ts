// The daemon's own once-a-second sweep really ends calls (short timeouts, bounded waits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { mediaPort, phone, rtp, sdp } from '../support/media.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function exists(d: Daemon, callId: string): Promise<boolean> {
  return (await d.ng.cmd({ command: 'query', 'call-id': callId })).result === 'ok';
}

/** Polls until the call is gone; returns how long that took (ms), or null after `maxMs`. */
async function goneWithin(d: Daemon, callId: string, maxMs: number): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start < maxMs) {
    if (!(await exists(d, callId))) return Date.now() - start;
    await sleep(100);
  }
  return null;
}

async function call(d: Daemon, callId: string, aPort: number, bPort: number) {
  const o = await d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp({ port: aPort }) });
  const a = await d.ng.cmd({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: bPort }) });
  assert.equal(o.result, 'ok');
  assert.equal(a.result, 'ok');
  return { toB: mediaPort(o.sdp as string), toA: mediaPort(a.sdp as string) };
}

test('--timeout ends a call without media; media keeps it alive', async (t) => {
  const d = await startDaemon(t, ['--timeout=1']);
  // Idle for a few sweep ticks first, as a daemon usually is: a sweep that began on the empty
  // table used to stay on it, and no call was ever timed out.
  await sleep(350);
  const a = await phone(t), b = await phone(t);
  await call(d, 'idle', a.rtp.port, b.rtp.port);
  const { toA } = await call(d, 'busy', a.rtp.port, b.rtp.port);
  // 'busy' sends a packet every 250 ms for 2.5 s: longer than the timeout, so only media keeps it.
  for (let i = 0; i < 10; i++) { await a.rtp.send(rtp({ seq: i }), toA); await sleep(250); }
  assert.equal(await exists(d, 'idle'), false, 'idle call ended by --timeout=1');
  assert.equal(await exists(d, 'busy'), true, 'a call with media lives on');
  assert.notEqual(await goneWithin(d, 'busy', 3000), null, 'and ends once its media stops');
  const ended = d.logs.filter((l) => l.msg === 'call ended').map((l) => [l.callId, l.reason]);
  assert.deepEqual(ended, [['idle', 'timeout'], ['busy', 'timeout']]);
  const st = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(st.statistics.totalstatistics.timeoutsessions, 2);
});

test('--offer-timeout ends an unanswered call, --final-timeout any call', async (t) => {
  const d = await startDaemon(t, ['--offer-timeout=1', '--final-timeout=2']);
  const a = await phone(t), b = await phone(t);
  assert.equal((await d.ng.cmd({ command: 'offer', 'call-id': 'half', 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) })).result, 'ok');
  const { toA } = await call(d, 'full', a.rtp.port, b.rtp.port);
  assert.notEqual(await goneWithin(d, 'half', 3000), null, 'offer-timeout');
  assert.equal(await exists(d, 'full'), true);
  let gone = false;
  for (let i = 0; i < 20 && !gone; i++) { await a.rtp.send(rtp({ seq: i }), toA); await sleep(150); gone = !(await exists(d, 'full')); }
  assert.ok(gone, 'final-timeout ends the call despite its media');
  const reasons = d.logs.filter((l) => l.msg === 'call ended').map((l) => l.reason);
  assert.deepEqual(reasons, ['offer-timeout', 'final-timeout']);
});

test('delete-delay from the request keeps the call queryable until it passes', async (t) => {
  const d = await startDaemon(t, ['--delete-delay=0']);
  await call(d, 'late', 4000, 4002);
  assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': 'late', 'delete-delay': 1 })).result, 'ok');
  assert.equal(await exists(d, 'late'), true, 'still there right after the delete');
  const ms = await goneWithin(d, 'late', 3000);
  assert.notEqual(ms, null, 'gone after the delay');
  await call(d, 'now', 4000, 4002);
  assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': 'now' })).result, 'ok');
  assert.equal(await exists(d, 'now'), false, '--delete-delay=0: gone at once');
});
