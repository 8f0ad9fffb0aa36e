// The NG control plane against the real daemon: framing, error replies and their wording as
// rtpengine 10.5.3.5 gives them (captured on loopback), reply key order, JSON, the
// retransmission cache, and TCP framing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { startDaemon } from '../support/daemon.js';
import { sdp } from '../support/media.js';
import { encodeBencode } from '../../control/codec.js';

const err = (reason: string): string => `d6:result5:error12:error-reason${Buffer.byteLength(reason)}:${reason}e`;
const NOT_FOUND = "Call-ID not found or tags didn't match";
const SDP = sdp({ port: 4000 }).replace(/\r\n/g, '\r\n');
const enc = (d: Parameters<typeof encodeBencode>[0]): string => encodeBencode(d).toString('latin1');

/** Request payload → exact reply payload, each observed from rtpengine 10.5.3.5. */
const CASES: [string, string][] = [
  ['d7:command4:pinge', 'd6:result4:ponge'],
  ['d7:command4:ping', 'd6:result4:ponge'], // missing closing e
  ['d7:command4:ping1:xl1:a', 'd6:result4:ponge'], // several missing, cut between list items
  ['d7:command4:pingeTRAILING', 'd6:result4:ponge'],
  ['d7:command4:ping7:command5:offere', 'd6:result4:ponge'], // first duplicate key wins
  ['d7:command4:ping1:xi-0ee', 'd6:result4:ponge'],
  ['d7:command4:ping5:flagsd1:ai1eee', 'd6:result4:ponge'], // wrong types in unused keys are ignored
  ['', err('Invalid data (no payload)')],
  ['l4:pinge', err('Invalid NG data format')],
  ['x d7:command4:pinge', err('Invalid NG data format')],
  ['d7:command4:pin', err('Could not decode bencode dictionary')], // cut inside a string
  ['d7:command', err('Could not decode bencode dictionary')], // key without value
  ['d7:command4:ping1:xi5', err('Could not decode bencode dictionary')],
  ['d7:command4:pingi5e', err('Could not decode bencode dictionary')], // integer key
  ['d7:command4:ping1:xi03ee', err('Could not decode bencode dictionary')],
  ['d7:command4:ping2:ab03:xyze', err('Could not decode bencode dictionary')],
  ['de', err('Dictionary contains no key "command"')],
  ['d7:commandi5ee', err('Dictionary contains no key "command"')],
  ['d7:commandl4:pingee', err('Dictionary contains no key "command"')],
  ['d7:command4:PINGe', err('Unrecognized command')],
  ['d7:command7:commande', err('Unrecognized command')],
  [enc({ command: 'offer' }), err('No SDP body in message')],
  [enc({ command: 'offer', sdp: ['x'], 'call-id': 'x', 'from-tag': 'a' }), err('No SDP body in message')],
  [enc({ command: 'offer', sdp: 5, 'call-id': 'x', 'from-tag': 'a' }), err('No SDP body in message')],
  [enc({ command: 'offer', sdp: 'abc' }), err('No call-id in message')],
  [enc({ command: 'offer', sdp: 'abc', 'call-id': 5, 'from-tag': 6 }), err('No call-id in message')],
  [enc({ command: 'offer', sdp: 'abc', 'call-id': { a: 1 }, 'from-tag': 'a' }), err('No call-id in message')],
  [enc({ command: 'offer', sdp: 'abc', 'call-id': 'x' }), err('No from-tag in message')],
  [enc({ command: 'offer', sdp: 'abc', 'call-id': 'x', 'from-tag': 5 }), err('No from-tag in message')],
  [enc({ command: 'offer', sdp: 'abc', 'call-id': 'x', 'from-tag': ['a'] }), err('No from-tag in message')],
  [enc({ command: 'offer', sdp: 'abc', 'call-id': 'x', 'from-tag': 'a' }), err('Failed to parse SDP')],
  [enc({ command: 'offer', sdp: 'abc', 'call-id': 'x', 'from-tag': 'a', flags: { a: 1 } }), err('Failed to parse SDP')],
  [enc({ command: 'offer', sdp: 'v=0\r\n', 'call-id': 'x', 'from-tag': 'a' }), err('Error rewriting SDP')],
  [enc({ command: 'answer', sdp: 'abc', 'call-id': 'x', 'from-tag': 'a' }), err('No to-tag in message')],
  [enc({ command: 'answer', sdp: 'abc', 'call-id': 'x', 'from-tag': 'a', 'to-tag': 5 }), err('No to-tag in message')],
  [enc({ command: 'answer', sdp: SDP, 'call-id': 'zz', 'from-tag': 'a', 'to-tag': 'b' }), err('Unknown call-id')],
  [enc({ command: 'query' }), err('No call-id in message')],
  [enc({ command: 'query', 'call-id': 'zzz' }), err('Unknown call-id')],
  [enc({ command: 'query', 'call-id': '' }), err('Unknown call-id')],
  [enc({ command: 'delete' }), err('No call-id in message')],
  [enc({ command: 'delete', 'call-id': 5 }), err('No call-id in message')],
  [enc({ command: 'delete', 'call-id': 'nonexistent', 'from-tag': 'x' }), `d7:warning38:${NOT_FOUND}6:result2:oke`],
  [enc({ command: 'delete', 'call-id': '' }), `d7:warning38:${NOT_FOUND}6:result2:oke`],
  [enc({ command: 'delete', 'call-id': 'nonexistent', flags: ['fatal'] }), err(NOT_FOUND)],
  [enc({ command: 'delete', 'call-id': 'nonexistent', flags: ['FATAL'] }), `d7:warning38:${NOT_FOUND}6:result2:oke`],
  [enc({ command: 'delete', 'call-id': 'nonexistent', flags: 'fatal' }), `d7:warning38:${NOT_FOUND}6:result2:oke`],
  [enc({ command: 'list' }), 'd5:callsle6:result2:oke'],
  [enc({ command: 'list', limit: -1 }), err('invalid limit, must be >= 0')],
  [enc({ command: 'list', limit: '-1' }), err('invalid limit, must be >= 0')],
  [enc({ command: 'list', limit: 'abc' }), 'd5:callsle6:result2:oke'],
  // JSON in, JSON out.
  ['{"command":"ping"}', '{"result":"pong"}'],
  ['{"command":"ping","x":[1,{"a":"b"}],"y":true}', '{"result":"pong"}'],
  ['{"command":', '{"result":"error","error-reason":"Failed to parse JSON document"}'],
  ['{"command":"ping"}xyz', '{"result":"error","error-reason":"Failed to parse JSON document"}'],
  ['{"command":"ping","x":null}', '{"result":"error","error-reason":"Could not decode bencode dictionary"}'],
  ['{"command":"ping","x":1.5}', '{"result":"error","error-reason":"Could not decode bencode dictionary"}'],
  ['{}', '{"result":"error","error-reason":"Dictionary contains no key \\"command\\""}'],
  ['{"command":"ping","command":"offer"}', '{"result":"error","error-reason":"No SDP body in message"}'], // JSON: last wins
  ['{"command":"list","limit":-1}', '{"result":"error","error-reason":"invalid limit, must be >= 0"}'],
  ['{"command":"delete","call-id":"q"}', `{"warning":"${NOT_FOUND}","result":"ok"}`],
];

test('every malformed or incomplete request gets rtpengine 10.5\'s reply, byte for byte', async (t) => {
  const d = await startDaemon(t);
  for (const [req, want] of CASES) {
    const got = await d.ng.raw(Buffer.from(req, 'latin1'));
    assert.equal(got?.toString('latin1'), want, `request ${JSON.stringify(req)}`);
  }
});

/** A UDP socket of its own (one source address); `exchange` sends datagrams, collects `want` replies. */
async function source(t: Parameters<typeof startDaemon>[0], port: number) {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  t?.after(() => s.close());
  return {
    async exchange(msgs: Buffer[], want: number, ms = 3000): Promise<Buffer[]> {
      const got: Buffer[] = [];
      let onMsg!: (m: Buffer) => void;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        onMsg = (m) => { got.push(m); if (got.length >= want) { clearTimeout(timer); resolve(); } };
        s.on('message', onMsg);
        for (const m of msgs) s.send(m, port, '127.0.0.1');
      });
      s.off('message', onMsg);
      return got;
    },
  };
}

async function exchange(t: Parameters<typeof startDaemon>[0], port: number, msgs: Buffer[], want: number, ms = 3000): Promise<Buffer[]> {
  return (await source(t, port)).exchange(msgs, want, ms);
}

test('no cookie, no reply; the cookie comes back byte for byte', async (t) => {
  const d = await startDaemon(t);
  assert.deepEqual(await exchange(t, d.ngPort, [Buffer.from('d7:command4:pinge'), Buffer.from(' d7:command4:pinge')], 1, 500), []);
  const cookie = Buffer.from([0x01, 0xff, 0x80, 0x41, 0x5f, 0x09]);
  const [r] = await exchange(t, d.ngPort, [Buffer.concat([cookie, Buffer.from(' d7:command4:pinge')])], 1);
  assert.deepEqual(r, Buffer.concat([cookie, Buffer.from(' d6:result4:ponge')]));
});

test('replies keep rtpengine\'s key order: sdp before result, error-reason and warning placement', async (t) => {
  const d = await startDaemon(t);
  const offer = await d.ng.raw(encodeBencode({ command: 'offer', 'call-id': 'ko', 'from-tag': 'A', sdp: SDP }));
  assert.match(offer!.toString(), /^d3:sdp\d+:v=0\r\n.*6:result2:oke$/s);
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'ko' });
  assert.deepEqual(Object.keys(q), ['created', 'created_us', 'last signal', 'SSRC', 'tags', 'totals', 'result']);
  const unknownTag = await d.ng.cmd({ command: 'query', 'call-id': 'ko', 'from-tag': 'nope' });
  assert.equal(unknownTag.result, 'ok');
  assert.deepEqual(unknownTag.tags, {}, 'an unknown tag shows no participants, as in rtpengine');
  const list = await d.ng.raw(encodeBencode({ command: 'list' }));
  assert.equal(list?.toString(), 'd5:callsl2:koe6:result2:oke');
  assert.equal((await d.ng.raw(encodeBencode({ command: 'list', limit: 0 })))?.toString(), 'd5:callsle6:result2:oke');
  assert.equal((await d.ng.raw(encodeBencode({ command: 'delete', 'call-id': 'ko' })))?.toString(), 'd6:result2:oke');
});

test('statistics carries rtpengine\'s top-level layout and counts commands per proxy', async (t) => {
  const d = await startDaemon(t);
  await d.ng.cmd({ command: 'ping' });
  await d.ng.raw('d7:command4:PINGe');
  await d.ng.cmd({ command: 'offer', 'call-id': 'st', 'from-tag': 'A', sdp: SDP });
  const r = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.deepEqual(Object.keys(r), ['statistics', 'result']);
  const s = r.statistics;
  assert.deepEqual(Object.keys(s), ['currentstatistics', 'totalstatistics', 'controlstatistics', 'interfaces', 'transcoders']);
  assert.equal(s.currentstatistics.sessionsown, 1);
  assert.equal(s.currentstatistics.sessionstotal, 1);
  assert.equal(s.totalstatistics.managedsessions, 1);
  assert.match(s.totalstatistics.uptime, /^\d+$/, 'a string, as in rtpengine');
  const [proxy] = s.controlstatistics.proxies;
  assert.equal(proxy.proxy, '127.0.0.1');
  assert.equal(proxy.pingcount, 1);
  assert.equal(proxy.offercount, 1);
  assert.equal(proxy.statscount, 0, 'the statistics request itself is counted after its reply');
  assert.match(proxy.offerduration, /^\d+\.\d{6}$/);
  assert.equal(proxy.errorcount, 1, 'the unrecognised command');
  assert.equal(s.controlstatistics.totalpingcount, 1);
  assert.equal(s.controlstatistics.totalunsubcount, 0);
  assert.equal(s.interfaces[0].address, '127.0.0.1');
  assert.equal(s.interfaces[0].ports.used, 4, 'an RTP/RTCP pair for each side of the offer');
  assert.equal(s.interfaces[0].ports.free + 4, s.interfaces[0].ports.totals);
});

test('a retransmitted offer runs once: same ports, byte-identical replies, also while still in progress', async (t) => {
  const d = await startDaemon(t);
  const msg = Buffer.concat([Buffer.from('retx_1 '), encodeBencode({ command: 'offer', 'call-id': 'rx', 'from-tag': 'A', sdp: SDP })]);
  // Three copies back to back: the later ones arrive while the first is still being handled.
  const proxy = await source(t, d.ngPort);
  const burst = await proxy.exchange([msg, msg, msg], 3);
  assert.equal(burst.length, 3);
  assert.match(burst[0]!.toString(), /^retx_1 d3:sdp/);
  assert.deepEqual(burst[1], burst[0]);
  assert.deepEqual(burst[2], burst[0]);
  // And again later, after the first has finished.
  const [late] = await proxy.exchange([msg], 1);
  assert.deepEqual(late, burst[0]);
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'rx' }) as any;
  assert.deepEqual(Object.keys(q.tags).sort(), ['<untagged 1>', 'A'], 'one offer, one far side');
  const stats = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(stats.statistics.controlstatistics.totaloffercount, 1, 'executed once');
  assert.equal(stats.statistics.interfaces[0].ports.used, 4, 'two pairs: one per participant');
});

test('a reused cookie with another body is a new request, not a retransmission', async (t) => {
  const d = await startDaemon(t);
  const offer = await d.ng.raw(encodeBencode({ command: 'offer', 'call-id': 'ru', 'from-tag': 'A', sdp: SDP }), 'reuse_1');
  assert.match(offer!.toString(), /^d3:sdp/);
  assert.equal((await d.ng.raw('d7:command4:pinge', 'reuse_1'))?.toString(), 'd6:result4:ponge');
  // The same body from another source is that source's own request.
  const other = await exchange(t, d.ngPort, [Buffer.from('reuse_1 d7:command4:pinge')], 1);
  assert.equal(other[0]?.toString(), 'reuse_1 d6:result4:ponge');
  const stats = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(stats.statistics.controlstatistics.totalpingcount, 2);
});

/** Opens a TCP NG connection; `reply()` waits for `n` bytes-worth of replies or the close. */
async function tcp(port: number) {
  const c = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => { c.once('connect', r); c.once('error', j); });
  let buf = Buffer.alloc(0);
  let closed = false;
  const waiters: (() => void)[] = [];
  c.on('data', (d) => { buf = Buffer.concat([buf, d]); waiters.splice(0).forEach((w) => w()); });
  c.on('close', () => { closed = true; waiters.splice(0).forEach((w) => w()); });
  c.on('error', () => undefined);
  return {
    c,
    get closed() { return closed; },
    /** Resolves with everything received once `text` has arrived, or the connection closed, or 3 s passed. */
    async until(text: string): Promise<string> {
      const end = Date.now() + 3000;
      while (!buf.toString('latin1').includes(text) && !closed && Date.now() < end) {
        await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 100); });
      }
      return buf.toString('latin1');
    },
  };
}

test('TCP: no length prefix; several messages per segment, one message over many segments, JSON too', async (t) => {
  const d = await startDaemon(t, ['--listen-tcp-ng=127.0.0.1:0']);
  const s = await tcp(d.tcpPort!);
  t.after(() => s.c.destroy());
  s.c.write('a1 d7:command4:pingea2 d7:command4:pingeXYZ d7:command4:liste');
  assert.equal(await s.until('XYZ d5:'), 'a1 d6:result4:pongea2 d6:result4:pongeXYZ d5:callsle6:result2:oke');
  const offer = Buffer.from('b1 ' + enc({ command: 'offer', 'call-id': 'tc', 'from-tag': 'A', sdp: SDP }), 'latin1');
  for (let i = 0; i < offer.length; i += 7) {
    s.c.write(offer.subarray(i, i + 7));
    await new Promise((r) => setImmediate(r));
  }
  assert.match(await s.until('b1 d3:sdp'), /b1 d3:sdp\d+:v=0/);
  assert.match(await s.until('6:result2:oke'), /6:result2:oke$/);
  s.c.write('c1 {"command":"ping"}');
  assert.match(await s.until('c1 {'), /c1 \{"result":"pong"\}$/);
  s.c.write('d1 l4:pinge');
  assert.match(await s.until('d1 d'), /d1 d6:result5:error12:error-reason22:Invalid NG data formate$/);
  assert.equal(s.closed, false);
});

test('TCP: binary junk closes that connection only; the daemon keeps serving', async (t) => {
  const d = await startDaemon(t, ['--listen-tcp-ng=127.0.0.1:0']);
  const junk = await tcp(d.tcpPort!);
  const good = await tcp(d.tcpPort!);
  t.after(() => { junk.c.destroy(); good.c.destroy(); });
  junk.c.write(Buffer.from([0x00, 0x01, 0xff, 0x20, 0x78, 0x79, 0x7a, 0x00]));
  await junk.until('never');
  assert.equal(junk.closed, true);
  const deep = await tcp(d.tcpPort!);
  t.after(() => deep.c.destroy());
  deep.c.write('k1 ' + 'l'.repeat(100000));
  await deep.until('never');
  assert.equal(deep.closed, true, 'hostile nesting closes the connection');
  good.c.write('g1 d7:command4:pinge');
  assert.equal(await good.until('ponge'), 'g1 d6:result4:ponge');
  assert.deepEqual(await d.ng.cmd({ command: 'ping' }), { result: 'pong' });
});

test('SDP bytes that are not UTF-8 pass through unchanged, as in rtpengine', async (t) => {
  const d = await startDaemon(t);
  const body = Buffer.concat([Buffer.from('v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns='), Buffer.from([0xff, 0xfe, 0xc3, 0xa9]),
    Buffer.from('\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n')]);
  const reply = await d.ng.raw(encodeBencode({ command: 'offer', 'call-id': 'l1', 'from-tag': 'A', sdp: body }));
  assert.ok(reply?.includes(Buffer.concat([Buffer.from('\r\ns='), Buffer.from([0xff, 0xfe, 0xc3, 0xa9]), Buffer.from('\r\n')])), reply?.toString('latin1'));
});
