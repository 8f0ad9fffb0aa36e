// The worker-thread media plane (--media-workers=2): calls spread over the workers, each call's
// sockets in one worker, ports never collide, and a worker that dies is reported, its calls end
// and the daemon keeps serving (on a restarted worker too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portRange, startDaemon, threadNames } from '../support/daemon.js';
import { relaysBothWays, sdp, twoPartyCall, type TwoPartyCall } from '../support/media.js';
import { nativeAddon } from '../../media/native-addon.js';

const RANGE = 40; // 20 pairs: worker 0 owns the lower 10, worker 1 the upper 10

function rangeOf(args: string[]): { min: number; mid: number } {
  const min = Number(args[0]!.split('=')[1]);
  return { min, mid: min + RANGE / 2 };
}


test('calls spread over both workers, a call stays in one worker, ports never collide', async (t) => {
  const args = portRange(RANGE);
  const { mid } = rangeOf(args);
  const d = await startDaemon(t, [...args, '--media-workers=2']);
  assert.ok(d.logs.some((l) => l.msg === 'media workers started' && l.workers === 2));
  const calls: TwoPartyCall[] = [];
  for (let i = 0; i < 6; i++) calls.push(await twoPartyCall(t, d.ng, `spread-${i}`));
  const ports = calls.flatMap((c) => [c.toA, c.toB]);
  assert.equal(new Set(ports).size, ports.length, 'every pair is a different port');
  for (const c of calls) {
    assert.equal(c.toA < mid, c.toB < mid, `both sides of a call in one worker (${c.toA}, ${c.toB})`);
  }
  assert.ok(calls.some((c) => c.toA < mid) && calls.some((c) => c.toA >= mid), `calls on both workers: ${ports.join(' ')}`);
  for (const [i, c] of calls.entries()) assert.ok(await relaysBothWays(c, i + 1), `call ${i} relays both ways`);
  // Counters come back from the worker through shared memory.
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'spread-0' }) as any;
  assert.equal(q.totals.RTP.packets, 2);
  const st = await d.ng.cmd({ command: 'statistics' }) as any;
  const itf = st.statistics.interfaces.find((i: any) => i.address === '127.0.0.1');
  assert.equal(itf.ports.used + itf.ports.free, RANGE, JSON.stringify(itf.ports));
  // Deleting gives every port back, in both workers.
  for (let i = 0; i < 6; i++) assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': `spread-${i}` })).result, 'ok');
  const after = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(after.statistics.interfaces.find((i: any) => i.address === '127.0.0.1').ports.free, RANGE);
});

test('threads are named for top -H and the benchmark: rtprelay, media-N and their socket threads', { skip: nativeAddon() === null && 'native addon not built' }, async (t) => {
  const d = await startDaemon(t, [...portRange(RANGE), '--media-workers=2']);
  const c = await twoPartyCall(t, d.ng, 'named');
  assert.ok(await relaysBothWays(c, 1));
  const names = threadNames(d.proc.pid!);
  // Socket threads are the native socket layer's (none with --socket-io=dgram, the fallback run).
  const io = process.env.RTPRELAY_SOCKET_IO !== 'dgram' ? ['media-0-io', 'media-1-io'] : [];
  for (const n of ['rtprelay', 'media-0', 'media-1', ...io]) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
});

test('the range used up across workers: "Ran out of ports", and delete gives them back', async (t) => {
  const args = portRange(16); // 8 pairs, 4 per worker: two calls per worker
  const d = await startDaemon(t, [...args, '--media-workers=2']);
  const ok: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await d.ng.cmd({ command: 'offer', 'call-id': `full-${i}`, 'from-tag': 'A', sdp: sdp({ port: 4000 + 2 * i }) });
    if (r.result === 'ok') ok.push(`full-${i}`);
    else assert.deepEqual(r, { result: 'error', 'error-reason': 'Ran out of ports' });
  }
  assert.equal(ok.length, 4);
  assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': ok[0]! })).result, 'ok');
  assert.equal((await d.ng.cmd({ command: 'offer', 'call-id': 'late', 'from-tag': 'A', sdp: sdp({ port: 4100 }) })).result, 'ok');
});

test('a worker that dies is reported, its calls end, the others go on, new calls work', async (t) => {
  const args = portRange(RANGE);
  const { mid } = rangeOf(args);
  const d = await startDaemon(t, [...args, '--media-workers=2'], { env: { RTPRELAY_TEST_HOOKS: '1' } });
  const calls = new Map<string, TwoPartyCall>();
  for (let i = 0; i < 6; i++) calls.set(`w-${i}`, await twoPartyCall(t, d.ng, `w-${i}`));
  const onZero = [...calls].filter(([, c]) => c.toA < mid).map(([id]) => id);
  const onOne = [...calls].filter(([, c]) => c.toA >= mid).map(([id]) => id);
  assert.ok(onZero.length > 0 && onOne.length > 0);
  for (const c of calls.values()) assert.ok(await relaysBothWays(c, 1));

  d.proc.kill('SIGUSR2'); // test hook: worker 0 throws
  const deadline = Date.now() + 5000;
  while (!d.logs.some((l) => l.msg === 'media worker restarted') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const died = d.logs.find((l) => l.msg === 'media worker died');
  assert.ok(died, 'the death is logged');
  assert.equal(died.level, 50, 'at error level');
  assert.equal(died.worker, 0);
  assert.equal(died.sockets, onZero.length * 4);
  const ended = d.logs.filter((l) => l.msg === 'call ended' && l.reason === 'media-lost').map((l) => l.callId).sort();
  assert.deepEqual(ended, [...onZero].sort(), 'exactly the calls of the dead worker ended');
  for (const id of onZero) {
    assert.deepEqual(await d.ng.cmd({ command: 'query', 'call-id': id }), { result: 'error', 'error-reason': 'Unknown call-id' });
  }
  for (const id of onOne) assert.ok(await relaysBothWays(calls.get(id)!, 2), `${id} on the live worker still relays`);
  assert.ok(d.logs.some((l) => l.msg === 'media worker restarted'), 'worker 0 comes back');
  // New calls are served, on both workers again (the restarted one has all its ports free).
  const fresh: TwoPartyCall[] = [];
  for (let i = 0; i < 4; i++) fresh.push(await twoPartyCall(t, d.ng, `after-${i}`));
  for (const [i, c] of fresh.entries()) assert.ok(await relaysBothWays(c, 10 + i), `new call ${i} relays`);
  assert.ok(fresh.some((c) => c.toA < mid), 'the restarted worker takes calls');
  assert.equal(d.proc.exitCode, null, 'the daemon is still running');
});
