// Call threads (--call-threads=2): calls spread over the threads by call-id, each call's media
// sockets in its thread's half of the port range; the main thread routes NG and answers list and
// statistics for the whole instance; retransmissions are answered once; a thread that dies is
// reported and restarted, the other thread's calls go on and the daemon keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBencodeDict, encodeBencode } from '../../control/codec.js';
import { threadOf } from '../../daemon/call-threads.js';
import { portRange, startDaemon, threadNames } from '../support/daemon.js';
import { nativeAddon } from '../../media/native-addon.js';
import { relaysBothWays, sdp, twoPartyCall, type TwoPartyCall } from '../support/media.js';
import { until } from '../support/net.js';

const RANGE = 40; // 20 pairs: thread 0 owns the lower 10, thread 1 the upper 10


/** Call-ids that hash to thread 0 and to thread 1 (two each). */
function idsByThread(prefix: string): [string[], string[]] {
  const out: [string[], string[]] = [[], []];
  for (let i = 0; out[0].length < 2 || out[1].length < 2; i++) {
    const id = `${prefix}-${i}`;
    const list = out[threadOf(id, 2)];
    if (list.length < 2) list.push(id);
  }
  return out;
}

test('calls spread over the threads by call-id; list, query and statistics see the whole instance', async (t) => {
  const args = portRange(RANGE);
  const min = Number(args[0]!.split('=')[1]), mid = min + RANGE / 2;
  const d = await startDaemon(t, [...args, '--call-threads=2', '--listen-http=127.0.0.1:0']);
  assert.ok(d.logs.some((l) => l.msg === 'call threads started' && l.threads === 2));
  const native = process.env.RTPRELAY_SOCKET_IO !== 'dgram';
  assert.equal(d.logs.some((l) => l.msg === 'ng over udp: commands go from the socket straight to their call thread'), native);
  const [zero, one] = idsByThread('spread');
  const calls = new Map<string, TwoPartyCall>();
  for (const id of [...zero, ...one]) calls.set(id, await twoPartyCall(t, d.ng, id));
  for (const id of zero) assert.ok(calls.get(id)!.toA < mid && calls.get(id)!.toB < mid, `${id}: thread 0's ports`);
  for (const id of one) assert.ok(calls.get(id)!.toA >= mid && calls.get(id)!.toB >= mid, `${id}: thread 1's ports`);
  const ports = [...calls.values()].flatMap((c) => [c.toA, c.toB]);
  assert.equal(new Set(ports).size, ports.length, 'every pair is a different port');
  for (const [i, c] of [...calls.values()].entries()) assert.ok(await relaysBothWays(c, i + 1), `call ${i} relays both ways`);
  if (nativeAddon()) for (const n of ['rtprelay', 'call-0', 'call-1']) assert.ok(threadNames(d.proc.pid!).includes(n), `thread ${n}`);

  const q = await d.ng.cmd({ command: 'query', 'call-id': one[0]! }) as any;
  assert.equal(q.result, 'ok');
  assert.equal(q.totals.RTP.packets, 2);
  // An alias of the key is read by the main thread's JavaScript (not handed over): the same thread.
  const alias = await d.ng.cmd({ command: 'query', 'Call-ID': zero[1]! }) as any;
  assert.equal(alias.result, 'ok');
  if (native) {
    // Offer and answer of four calls and the query: from the socket straight to their thread.
    const metrics = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
    assert.match(metrics, /^rtprelay_ng_handed_over_total\{result="routed"\} 9$/m);
  }
  const l = await d.ng.cmd({ command: 'list' }) as any;
  assert.deepEqual([...l.calls].sort(), [...zero, ...one].sort());
  const st = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(st.statistics.currentstatistics.sessionsown, 4);
  assert.equal(st.statistics.controlstatistics.totaloffercount, 4, 'the routed commands are counted');
  assert.equal(st.statistics.controlstatistics.totalquerycount, 2, 'handed over or routed by the main thread, counted once');
  const itf = st.statistics.interfaces.find((i: any) => i.address === '127.0.0.1');
  assert.equal(itf.ports.used, 16);
  assert.equal(itf.ports.used + itf.ports.free, RANGE);

  for (const id of calls.keys()) assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': id })).result, 'ok');
  const after = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(after.statistics.interfaces.find((i: any) => i.address === '127.0.0.1').ports.free, RANGE);
  assert.equal(after.statistics.currentstatistics.sessionstotal, 0);
  assert.equal(after.statistics.totalstatistics.managedsessions, 4);
  assert.equal(after.statistics.totalstatistics.regularterminatedsessions, 4);
  if (native) {
    // The deleted calls' 16 sockets stay bound for reuse (--socket-park), summed over both threads.
    await until(async () => /^rtprelay_sockets_parked\{address="127\.0\.0\.1"\} 16$/m.test(await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text()),
      '16 parked sockets in /metrics');
  }
  // Errors keep rtpengine's wording, wherever they are made.
  assert.deepEqual(await d.ng.cmd({ command: 'query', 'call-id': 'nobody' }), { result: 'error', 'error-reason': 'Unknown call-id' });
  assert.deepEqual(await d.ng.cmd({ command: 'offer', 'from-tag': 'A', sdp: sdp({ port: 4000 }) }), { result: 'error', 'error-reason': 'No call-id in message' });
  assert.deepEqual(await d.ng.cmd({ command: 'no such' }), { result: 'error', 'error-reason': 'Unrecognized command' });
});

test('a retransmitted command (same cookie) is answered from the cache, run once', async (t) => {
  const d = await startDaemon(t, [...portRange(RANGE), '--call-threads=2']);
  const body = encodeBencode({ command: 'offer', 'call-id': 'retx', 'from-tag': 'A', sdp: sdp({ port: 4000 }) });
  const first = await d.ng.raw(body, 'same-cookie');
  const again = await d.ng.raw(body, 'same-cookie');
  assert.ok(first && again);
  assert.equal(decodeBencodeDict(first).result?.toString(), 'ok');
  assert.deepEqual(again, first, 'the same reply, byte for byte');
  const st = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(st.statistics.controlstatistics.totaloffercount, 1);
  assert.equal(st.statistics.currentstatistics.sessionstotal, 1);
});

test('a call thread that dies is reported and restarted; the other thread\'s calls go on', async (t) => {
  const args = portRange(RANGE);
  const d = await startDaemon(t, [...args, '--call-threads=2'], { env: { RTPRELAY_TEST_HOOKS: '1' } });
  const [zero, one] = idsByThread('w');
  const calls = new Map<string, TwoPartyCall>();
  for (const id of [...zero, ...one]) calls.set(id, await twoPartyCall(t, d.ng, id));

  // The main thread's view of a thread's calls is at most LAZY_MS (call-thread.ts) old; statistics
  // brings it up to date, so the count of calls lost with the thread is exact below.
  assert.equal((await d.ng.cmd({ command: 'statistics' }) as any).statistics.currentstatistics.sessionsown, 4);
  d.proc.kill('SIGUSR2'); // test hook: thread 0 throws
  const deadline = Date.now() + 5000;
  while (!d.logs.some((l) => l.msg === 'call thread restarted') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const died = d.logs.find((l) => l.msg === 'call thread died');
  assert.ok(died, 'the death is logged');
  assert.equal(died.level, 50, 'at error level');
  assert.equal(died.thread, 0);
  assert.equal(died.callsLost, 2);
  assert.ok(d.logs.some((l) => l.msg === 'call thread restarted'), 'thread 0 comes back');
  for (const id of zero) {
    assert.deepEqual(await d.ng.cmd({ command: 'query', 'call-id': id }), { result: 'error', 'error-reason': 'Unknown call-id' });
  }
  for (const id of one) assert.ok(await relaysBothWays(calls.get(id)!, 2), `${id} on the live thread still relays`);
  // New calls on both threads again (the restarted one has all its ports free).
  const [z2, o2] = idsByThread('after');
  for (const id of [...z2, ...o2]) assert.ok(await relaysBothWays(await twoPartyCall(t, d.ng, id), 10), `new call ${id} relays`);
  const st = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(st.statistics.currentstatistics.sessionsown, 6);
  assert.equal(d.proc.exitCode, null, 'the daemon is still running');
});
