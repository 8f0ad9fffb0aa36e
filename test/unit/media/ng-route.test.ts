// NG commands handed from the socket straight to call threads (media/native/ng-route.c through
// media/udp.ts NgRouting): which datagrams go (a well-formed bencoded command with a printable
// ASCII call-id, not ping/list/statistics) and to which thread (threadOf's hash), that a thread
// answers on the routed socket itself, and that it can no longer once that socket is closed.
// This thread is call thread 0 and the reader; a worker is call thread 1. Real sockets on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { encodeBencode } from '../../../control/codec.js';
import { threadOf } from '../../../daemon/call-threads.js';
import { udpIo, type UdpSocket } from '../../../media/udp.js';
import { until } from '../../support/net.js';

const THREAD_1 = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.udp).then(({ udpIo }) => {
  const r = udpIo('native').ngRouting;
  let sock = null;
  // Replies leave from this thread's socket thread (sendSoon); the bytes are copied at once, so
  // the one buffer is overwritten right after.
  const out = Buffer.alloc(256);
  sock = r.adopt(workerData.ng, (buf, address, port) => {
    parentPort.postMessage({ got: Buffer.from(buf).toString('latin1'), address, port });
    const n = out.write('reply ' + Buffer.from(buf).toString('latin1').split(' ')[0], 'latin1');
    sock.sendSoon(out.subarray(0, n), port, address);
    out.fill(0x78);
  }, () => parentPort.postMessage({ sendFailed: true }));
  parentPort.on('message', (m) => {
    if (m.send) sock.send(Buffer.from('late'), m.send.port, m.send.address);
    if (m.sendSoon) {
      const io = udpIo('native'), before = io.sendSoonFailures();
      sock.sendSoon(Buffer.from('late soon'), m.sendSoon.port, m.sendSoon.address);
      let tries = 0;
      const check = () => {
        if (io.sendSoonFailures() > before || ++tries > 200) parentPort.postMessage({ soonFailed: io.sendSoonFailures() - before });
        else setTimeout(check, 10);
      };
      check();
    }
  });
  parentPort.postMessage({ serving: r.serve(1) });
});`;

const cmd = (cookie: string, dict: Record<string, unknown>): Buffer =>
  Buffer.concat([Buffer.from(`${cookie} `), encodeBencode(dict as never)]);

/** Call-ids threadOf puts on thread `want` of 2. */
function idFor(want: number, prefix: string): string {
  for (let i = 0; ; i++) if (threadOf(`${prefix}-${i}`, 2) === want) return `${prefix}-${i}`;
}

test('native: commands go to the thread of their call-id, answered on the NG socket; the rest stays with the reader', async (t) => {
  const io = udpIo('native');
  const routing = io.ngRouting!;
  assert.ok(routing, 'the native layer routes NG');
  const mine: string[] = [];
  let ng: UdpSocket | null = await io.bind('127.0.0.1', 0, (buf) => { mine.push(Buffer.from(buf).toString('latin1')); }, () => undefined);
  t.after(() => ng?.close());
  const handed = routing.route(ng, 2);
  assert.ok(handed, 'route() takes a socket of this layer');
  assert.ok(routing.serve(0), 'this thread serves thread 0');

  const worker = new Worker(THREAD_1, { eval: true, workerData: { udp: new URL('../../../media/udp.js', import.meta.url).href, ng: handed } });
  t.after(() => worker.terminate());
  const theirs: { got: string; address: string; port: number }[] = [];
  let sendFailed = 0, soonFailed = -1;
  const serving = new Promise<boolean>((resolve) => worker.on('message', (m) => {
    if ('serving' in m) resolve(m.serving);
    if ('got' in m) theirs.push(m);
    if (m.sendFailed) sendFailed++;
    if ('soonFailed' in m) soonFailed = m.soonFailed;
  }));
  assert.equal(await serving, true, 'the worker serves thread 1');

  const client = dgram.createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  t.after(() => client.close());
  const replies: string[] = [];
  client.on('message', (m, rinfo) => { assert.equal(rinfo.port, ng!.localPort(), 'replies come from the NG port'); replies.push(m.toString()); });
  const send = (b: Buffer): void => { client.send(b, ng!.localPort(), '127.0.0.1'); };

  const zero = idFor(0, 'z'), one = idFor(1, 'o');
  const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const before = routing.stats().routed;
  const routed = [
    cmd('r0', { command: 'offer', 'call-id': zero, 'from-tag': 'a', sdp }),
    cmd('r1', { command: 'offer', 'call-id': one, 'from-tag': 'a', sdp }),
    cmd('r2', { command: 'delete', 'call-id': one, flags: ['fatal'], nested: { d: [1, 2, { x: 'y' }] } }),
    cmd('r3', { command: 'no such', 'call-id': one }), // its thread gives rtpengine's error
  ];
  const kept = [
    cmd('k0', { command: 'ping' }),
    cmd('k1', { command: 'list', 'call-id': one }),
    cmd('k2', { command: 'statistics' }),
    Buffer.from(`k3 {"command":"delete","call-id":"${one}"}`), // JSON: decoded by JavaScript
    cmd('k4', { command: 'delete', 'Call-ID': one }), // an alias of the key: JavaScript reads it
    cmd('k5', { command: 'delete', 'call-id': one, 'call id': one }),
    cmd('k6', { command: 'delete', 'call-id': 'caf\u00e9' }), // not printable ASCII
    cmd('k7', { command: 'delete' }), // no call-id
    cmd('k8', { command: 'delete', 'call-id': 5 }), // not a string
    cmd('k9', { 'call-id': one }), // no command
    Buffer.concat([cmd('ka', { command: 'delete', 'call-id': one }), Buffer.from('x')]), // bytes after the dictionary
    cmd('kb', { command: 'delete', 'call-id': one }).subarray(0, 30), // cut
    Buffer.from('kc d7:command6:delete7:call-id3:abcd'), // malformed
    Buffer.from('no-space-anywhere'),
  ];
  for (const b of [...routed, ...kept]) send(b);
  await until(() => mine.length + theirs.length >= routed.length + kept.length, 'every datagram delivered', 3000);

  assert.equal(routing.stats().routed - before, routed.length, 'exactly the well-formed commands with a call-id were handed over');
  assert.deepEqual(theirs.map((x) => x.got.split(' ')[0]).sort(), ['r1', 'r2', 'r3'], 'thread 1 got the commands of its call-id');
  assert.ok(theirs.every((x) => x.address === '127.0.0.1' && x.port === (client.address()).port), 'with their source');
  assert.equal(theirs.find((x) => x.got.startsWith('r1 '))!.got, routed[1]!.toString('latin1'), 'byte for byte');
  assert.deepEqual(mine.map((x) => x.split(' ')[0]).sort(), ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'ka', 'kb', 'kc', 'no-space-anywhere', 'r0'].sort());
  await until(() => replies.length >= 3, 'three replies', 2000);
  assert.deepEqual(replies.sort(), ['reply r1', 'reply r2', 'reply r3'], 'thread 1 answered on the NG socket');

  // Closed by its owner, the socket takes nothing more from thread 1 (its number may be reused).
  const address = client.address();
  await ng.close();
  ng = null;
  worker.postMessage({ send: { address: '127.0.0.1', port: address.port } });
  await until(() => sendFailed > 0, 'the late send fails', 2000);
  assert.equal(sendFailed, 1, 'a send on the closed NG socket fails');
  // One queued for the socket thread is checked there the same way: counted, not sent.
  worker.postMessage({ sendSoon: { address: '127.0.0.1', port: address.port } });
  await until(() => soonFailed >= 0, 'the late queued send settles', 4000);
  assert.equal(soonFailed, 1, 'a queued send on the closed NG socket is refused and counted');
  assert.ok(!replies.includes('late soon') && !replies.includes('late'));
});
