// Hostile and malformed NG input, generated from a seeded PRNG so any failure replays exactly:
// random bytes, cut and mutated requests, every key given every wrong type, deep nesting, huge
// strings and integers, non-UTF-8 SDP, JSON variants, junk over TCP. Every datagram with a cookie
// must get a well-formed reply (never "Internal error"), the daemon must live, and a normal call
// must still relay RTP both ways afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { startDaemon, portRange } from '../support/daemon.js';
import { mediaPort, phone, rtp, sdp } from '../support/media.js';
import { decodeBencodeDict, decodeJsonDict, encodeBencode, scanBencode, type NgDict, type NgValue } from '../../control/codec.js';

const SEED = Number(process.env.NG_FUZZ_SEED ?? 0x5eed);
const COUNT = 5000;

/** mulberry32: small, fast, good enough to vary inputs reproducibly. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { next, int, pick, bytes };
}
type Rng = ReturnType<typeof prng>;

const COMMANDS = ['ping', 'offer', 'answer', 'delete', 'query', 'list', 'statistics', 'OFFER', 'block DTMF', '', 'x'.repeat(300)];
const KEYS = ['command', 'call-id', 'call ID', 'from-tag', 'to-tag', 'via-branch', 'sdp', 'flags', 'replace', 'direction',
  'received-from', 'ICE', 'rtcp-mux', 'transport-protocol', 'media-address', 'address-family', 'ptime', 'codec', 'label',
  'delete-delay', 'delete delay', 'limit', 'supports', 'SDES', 'DTLS', 'record call', 'metadata', '__proto__', 'constructor', 'toString'];
const FLAGS = ['trust-address', 'symmetric', 'asymmetric', 'fatal', 'all', 'strip-all', 'codec-strip-PCMU', 'transcode-PCMA',
  'replace-origin', 'port-latching', 'loop-protect', 'ICE-reject', 'original-sendrecv', 'full-rtcp-attribute'];

const goodSdp = (rng: Rng): string => sdp({ port: 2000 + 2 * rng.int(1000), pts: rng.pick([[0], [0, 8], [8, 101], [96]]) });

/** A value of some type, often the wrong one for the key it goes under. */
function junkValue(rng: Rng, depth = 0): NgValue {
  switch (rng.int(depth > 2 ? 8 : 11)) {
    case 0: return rng.int(2) ? -rng.int(1e9) : rng.int(1e9);
    case 1: return rng.pick([0, -1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e19]);
    case 2: return '';
    case 3: return rng.bytes(rng.int(40));
    case 4: return Buffer.concat([Buffer.from('v=0\r\nm=audio 1 RTP/AVP 0\r\ns='), Buffer.from([0xff, 0xfe, 0xc3, 0x28])]);
    case 5: return rng.pick(FLAGS);
    case 6: return goodSdp(rng);
    case 7: return 'x'.repeat(rng.int(3) === 0 ? 30000 : 200);
    case 8: return Array.from({ length: rng.int(5) }, () => junkValue(rng, depth + 1));
    case 9: return Object.fromEntries(Array.from({ length: rng.int(4) }, () => [rng.pick(KEYS), junkValue(rng, depth + 1)]));
    default: return Array.from({ length: rng.int(6) }, () => rng.pick(FLAGS));
  }
}

/** A plausible request: right keys, each with the right or a wrong type. */
function request(rng: Rng): NgDict {
  const command = rng.pick(COMMANDS);
  const d = Object.create(null) as NgDict; // so that `__proto__` is an ordinary key here too
  d.command = command;
  const callId = `fz${rng.int(20)}`;
  if (rng.int(6)) d['call-id'] = callId;
  if (rng.int(4)) d['from-tag'] = rng.pick(['A', 'B', 'C']);
  if (command === 'answer' || rng.int(3) === 0) d['to-tag'] = rng.pick(['A', 'B', 'C']);
  if (command === 'offer' || command === 'answer') d.sdp = goodSdp(rng);
  if (rng.int(2)) d.flags = Array.from({ length: rng.int(4) }, () => rng.pick(FLAGS));
  // Replace a few keys (or add unknown ones) with values of any type.
  for (let k = rng.int(4); k > 0; k--) d[rng.pick(KEYS)] = junkValue(rng);
  return d;
}

/** One hostile payload (without the cookie). */
function payload(rng: Rng): Buffer {
  const kind = rng.int(12);
  const valid = encodeBencode(request(rng));
  switch (kind) {
    case 0: return rng.bytes(rng.int(2000)); // noise
    case 1: return valid.subarray(0, rng.int(valid.length + 1)); // cut anywhere
    case 2: { // a few bytes flipped
      const b = Buffer.from(valid);
      for (let k = 1 + rng.int(4); k > 0; k--) b[rng.int(b.length)] = rng.int(256);
      return b;
    }
    case 3: return Buffer.from('d7:command4:ping1:x' + rng.pick(['l', 'd1:a']).repeat(10000 + rng.int(5000))); // deep nesting
    case 4: return Buffer.from(`d7:command4:ping1:xi${'9'.repeat(1 + rng.int(40))}ee`); // huge integers
    case 5: return Buffer.from(`d7:command4:ping1:x${rng.pick(['99999999999', '4294967296', '65536'])}:abce`); // lying lengths
    case 6: return Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(request(rng)).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('latin1') : v])))); // JSON
    case 7: return Buffer.from(rng.pick(['{', '{"command":[', '{"command":"ping","x":null}', '{"a":' + '['.repeat(20000), '[]', 'null', '{"command":"list","limit":1e400}']));
    case 8: return Buffer.concat([valid, rng.bytes(rng.int(50))]); // trailing junk
    case 9: return encodeBencode({ command: 'offer', 'call-id': `big${rng.int(5)}`, 'from-tag': 'A', sdp: goodSdp(rng) + 'a=x:' + 'y'.repeat(50000) + '\r\n' });
    default: return valid;
  }
}

function complete(body: Buffer): boolean {
  try { return scanBencode(body, 0) === body.length; } catch { return false; }
}

/** Checks one reply payload: a dictionary with a known result and, on error, a real reason. */
function checkReply(reply: Buffer, what: string): void {
  const dict = reply[0] === 0x7b ? decodeJsonDict(reply) : decodeBencodeDict(reply);
  const result = String(dict['result']);
  assert.ok(['ok', 'pong', 'error', 'load limit'].includes(result), `${what}: result ${result}`);
  if (result === 'error') {
    const reason = String(dict['error-reason']);
    assert.ok(reason.length > 0, `${what}: no error-reason`);
    assert.notEqual(reason, 'Internal error', `${what}: a handler threw`);
  }
}

test('thousands of hostile datagrams each get a well-formed reply, and calls still work afterwards', { timeout: 240_000 }, async (t) => {
  const d = await startDaemon(t, ['--listen-tcp-ng=127.0.0.1:0', ...portRange(600)]);
  const rng = prng(SEED);
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.after(() => sock.close());
  const pending = new Map<string, Buffer>();
  const replies = new Map<string, Buffer>();
  sock.on('message', (m) => {
    const sp = m.indexOf(0x20);
    const cookie = m.subarray(0, sp).toString('latin1');
    if (pending.delete(cookie)) replies.set(cookie, m.subarray(sp + 1));
  });
  const messages: [string, Buffer][] = [];
  for (let i = 0; i < COUNT; i++) messages.push([`h${i}`, payload(rng)]);

  /** Sends in windows, waiting for replies, so that loopback buffers never overflow. */
  const send = async (batch: [string, Buffer][]): Promise<void> => {
    for (const [cookie, body] of batch) {
      pending.set(cookie, body);
      sock.send(Buffer.concat([Buffer.from(cookie + ' '), body]), d.ngPort, '127.0.0.1');
    }
    const deadline = Date.now() + 5000;
    while (batch.some(([c]) => pending.has(c)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  };
  for (let i = 0; i < messages.length; i += 32) await send(messages.slice(i, i + 32));
  // A datagram lost on the way is retransmitted once, as a proxy would (the reply cache answers).
  const lost = messages.filter(([c]) => pending.has(c));
  pending.clear();
  await send(lost);
  const unanswered = [...pending].slice(0, 5).map(([c, b]) => `${c} (${b.length} bytes) ${JSON.stringify(b.subarray(0, 120).toString('latin1'))}`);
  assert.equal(pending.size, 0, `no reply (seed ${SEED}) for:\n${unanswered.join('\n')}`);
  for (const [cookie, body] of messages) {
    const what = `${cookie} ${JSON.stringify(body.subarray(0, 80).toString('latin1'))} (seed ${SEED})`;
    checkReply(replies.get(cookie)!, what);
  }
  assert.equal(d.proc.exitCode, null, 'daemon alive after UDP fuzzing');

  // TCP: well-framed hostile requests pipelined on one connection, all answered in order.
  const c = net.connect(d.tcpPort!, '127.0.0.1');
  t.after(() => c.destroy());
  await new Promise<void>((r) => c.once('connect', r));
  let tcpIn = Buffer.alloc(0);
  c.on('data', (x) => { tcpIn = Buffer.concat([tcpIn, x]); });
  const framed: string[] = [];
  for (let i = 0; framed.length < 300 && i < 3000; i++) {
    const body = payload(rng);
    if (body[0] !== 0x64 || !complete(body)) continue; // TCP framing needs one complete bencoded value
    framed.push(`tc${i}`);
    c.write(Buffer.concat([Buffer.from(`tc${i} `), body]));
  }
  const deadline = Date.now() + 10_000;
  const countReplies = (): number => framed.filter((ck) => tcpIn.includes(`${ck} d`)).length;
  while (countReplies() < framed.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(countReplies(), framed.length, 'every framed TCP request answered');
  // Then junk on fresh connections: each is closed, none harms the daemon.
  for (let k = 0; k < 20; k++) {
    const j = net.connect(d.tcpPort!, '127.0.0.1');
    j.on('error', () => undefined);
    await new Promise<void>((r) => j.once('connect', r));
    j.write(k % 2 ? rng.bytes(1 + rng.int(4000)) : Buffer.concat([Buffer.from('j '), rng.bytes(rng.int(3000))]));
    j.end();
    await new Promise((r) => setTimeout(r, 10));
    j.destroy();
  }
  assert.equal(d.proc.exitCode, null, 'daemon alive after TCP junk');
  assert.deepEqual(await d.ng.cmd({ command: 'ping' }), { result: 'pong' });

  // Clear whatever calls the fuzzing created, then a normal call relays RTP both ways.
  const listed = await d.ng.cmd({ command: 'list', limit: 1000 });
  for (const id of listed.calls as string[]) await d.ng.cmd({ command: 'delete', 'call-id': id });
  const a = await phone(t), b = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': 'after', 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': 'after', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: b.rtp.port }) });
  assert.equal(answer.result, 'ok', JSON.stringify(answer));
  const toB = mediaPort(offer.sdp as string), toA = mediaPort(answer.sdp as string);
  const p1 = rtp({ ssrc: 0xa, seq: 1 }), p2 = rtp({ ssrc: 0xb, seq: 2 });
  await a.rtp.send(p1, toA);
  assert.deepEqual((await b.rtp.recv())?.msg, p1, 'A → B');
  await b.rtp.send(p2, toB);
  assert.deepEqual((await a.rtp.recv())?.msg, p2, 'B → A');
  assert.ok(!d.stderr().includes('command failed unexpectedly'), 'no handler threw');
});
