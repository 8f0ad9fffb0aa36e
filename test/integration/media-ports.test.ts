import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { portRange, startDaemon, type Daemon } from '../support/daemon.js';
import { mediaPort, relaysBothWays, rtp, sdp, twoPartyCall, udpPeer } from '../support/media.js';
import { udpInodes, until } from '../support/net.js';

function offer(d: Daemon, callId: string) {
  return d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp({ port: 4000 }) });
}

async function freePorts(d: Daemon): Promise<number> {
  const s = await d.ng.cmd({ command: 'statistics' }) as any;
  return s.statistics.interfaces.find((i: any) => i.address === '127.0.0.1').ports.free;
}

test('RTP on an even port, RTCP on the next, inside the range', async (t) => {
  const range = portRange(10);
  const min = Number(range[0]!.split('=')[1]), max = Number(range[1]!.split('=')[1]);
  const d = await startDaemon(t, range);
  const r = await offer(d, 'even');
  assert.equal(r.result, 'ok');
  const port = mediaPort(r.sdp as string);
  assert.equal(port % 2, 0);
  assert.ok(port >= min && port + 1 <= max);
  assert.match(r.sdp as string, new RegExp(`^a=rtcp:${port + 1}\\r?$`, 'm'));
});

test('"Ran out of ports" when the range is used up; a failed offer leaks nothing; delete gives ports back', async (t) => {
  // 5 pairs: two calls take 2 pairs each, a third gets one pair and then fails on the second.
  const d = await startDaemon(t, portRange(10));
  assert.equal(await freePorts(d), 10);
  assert.equal((await offer(d, 'c1')).result, 'ok');
  assert.equal((await offer(d, 'c2')).result, 'ok');
  assert.equal(await freePorts(d), 2);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await offer(d, 'c3'), { result: 'error', 'error-reason': 'Ran out of ports' });
    assert.equal(await freePorts(d), 2, 'the pair the failed offer opened went back');
  }
  assert.deepEqual(await d.ng.cmd({ command: 'query', 'call-id': 'c3' }), { result: 'error', 'error-reason': 'Unknown call-id' });
  assert.equal((await d.ng.cmd({ command: 'query', 'call-id': 'c1' })).result, 'ok', 'existing calls unaffected');
  assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': 'c1' })).result, 'ok');
  assert.equal(await freePorts(d), 6);
  assert.equal((await offer(d, 'c3')).result, 'ok', 'a new call fits after the delete');
  assert.equal(await freePorts(d), 2);
});

test('a port held by another program is skipped, not fatal', async (t) => {
  const range = portRange(8);
  const min = Number(range[0]!.split('=')[1]);
  // Hold the RTCP port of the first pair: that pair cannot be used, the other three can.
  const squatter = dgram.createSocket('udp4');
  await new Promise<void>((r) => squatter.bind(min + 1, '127.0.0.1', () => r()));
  t.after(() => squatter.close());
  const d = await startDaemon(t, range);
  assert.equal((await offer(d, 'a')).result, 'ok');
  const b = await d.ng.cmd({ command: 'offer', 'call-id': 'b', 'from-tag': 'A', sdp: sdp({ port: 4002 }) });
  // Two calls need four pairs, only three can be bound.
  assert.deepEqual(b, { result: 'error', 'error-reason': 'Ran out of ports' });
  assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': 'a' })).result, 'ok');
  const c = await offer(d, 'c');
  assert.equal(c.result, 'ok', 'the freed pairs serve the next call');
  assert.notEqual(mediaPort(c.sdp as string), min);
});

test('ports of a deleted call return only after delete-delay', async (t) => {
  const d = await startDaemon(t, [...portRange(10), '--delete-delay=1']);
  assert.equal((await offer(d, 'dd')).result, 'ok');
  assert.equal(await freePorts(d), 6);
  assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': 'dd' })).result, 'ok');
  assert.equal(await freePorts(d), 6, 'still held during delete-delay');
  assert.equal((await d.ng.cmd({ command: 'query', 'call-id': 'dd' })).result, 'ok', 'still queryable');
  let free = 6;
  for (let i = 0; i < 30 && free !== 10; i++) {
    await new Promise((r) => setTimeout(r, 100));
    free = await freePorts(d);
  }
  assert.equal(free, 10, 'ports back within about two seconds');
  assert.equal((await d.ng.cmd({ command: 'query', 'call-id': 'dd' })).result, 'error');
});

/** A metric's value for 127.0.0.1 from /metrics, null when the daemon has no such series. */
async function metricAt(d: Daemon, name: string): Promise<number | null> {
  const text = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
  const m = new RegExp(`^${name}\\{address="127\\.0\\.0\\.1"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

for (const mode of [[], ['--media-workers=0']]) {
  test(`${mode.length ? 'in-process' : 'media worker'}: the next call given a deleted call's ports uses its sockets again (--socket-park), strays that reached them meanwhile go nowhere; --socket-park=0 binds new ones`, async (t) => {
    for (const park of [null, '0']) {
      // Two pairs: one call takes them all, so the next call gets the same ports.
      const range = portRange(4);
      const min = Number(range[0]!.split('=')[1]);
      const d = await startDaemon(t, [...range, ...mode, '--listen-http=127.0.0.1:0', ...(park === null ? [] : [`--socket-park=${park}`])]);
      // Parking is the native socket layer's (test:fallback runs this file on node:dgram).
      const parking = park === null && process.env.RTPRELAY_SOCKET_IO !== 'dgram';
      const c1 = await twoPartyCall(t, d.ng, `park-${park}-1`);
      assert.ok(await relaysBothWays(c1, 1));
      const before = udpInodes(min, min + 3);
      assert.equal(before.size, 4);
      assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': `park-${park}-1` })).result, 'ok');
      // The metrics show the parked sockets and the strays they drop (a media worker's figures come
      // after its close, and within a second or so).
      if (parking) await until(async () => await metricAt(d, 'rtprelay_sockets_parked') === 4, 'four parked sockets in /metrics');
      else assert.equal(await metricAt(d, 'rtprelay_sockets_parked'), null, 'no parking figures without parking');
      const stranger = await udpPeer(t);
      for (let p = min; p <= min + 3; p++) await stranger.send(rtp({ ssrc: 0x5757, seq: 9 }), p);
      if (parking) await until(async () => await metricAt(d, 'rtprelay_parked_dropped_total') === 4, 'four dropped strays in /metrics');
      const c2 = await twoPartyCall(t, d.ng, `park-${park}-2`);
      assert.deepEqual([c2.toA, c2.toB].sort(), [c1.toA, c1.toB].sort(), 'the same ports');
      // Media both ways, and only the new parties' own packets arrive.
      await c2.a.rtp.send(rtp({ ssrc: 0xa, seq: 2 }), c2.toA);
      await c2.b.rtp.send(rtp({ ssrc: 0xb, seq: 2 }), c2.toB);
      const atB = await c2.b.rtp.recv(1000), atA = await c2.a.rtp.recv(1000);
      assert.equal(atB?.msg.readUInt32BE(8), 0xa);
      assert.equal(atA?.msg.readUInt32BE(8), 0xb);
      assert.equal(await c2.b.rtp.recv(200), null, 'nothing else reached B');
      assert.equal(await c2.a.rtp.recv(200), null, 'nothing else reached A');
      const after = udpInodes(min, min + 3);
      if (parking) {
        assert.deepEqual(after, before, 'the same sockets (kernel inodes)');
        await until(async () => await metricAt(d, 'rtprelay_sockets_parked') === 0 && await metricAt(d, 'rtprelay_sockets_reused_total') === 4,
          'the four taken again in /metrics');
      } else {
        for (const [p, inode] of after) assert.notEqual(inode, before.get(p), `port ${p}: a new socket`);
      }
      await d.stop();
    }
  });
}
