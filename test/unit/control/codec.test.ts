import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeBencodeDict, decodeJsonDict, encodeBencode, encodeJson, FramingError, MAX_DEPTH, scan, scanBencode, scanJson, splitCookie,
  type NgDict, type NgValue,
} from '../../../control/codec.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
/** Decoded dict with Buffers shown as strings, so assertions stay readable. */
function plain(v: NgValue): unknown {
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}
const dec = (s: string): unknown => plain(decodeBencodeDict(b(s)));
const reason = (fn: () => unknown): string => {
  try { fn(); } catch (e) { if (e instanceof FramingError) return e.reason; throw e; }
  return '(no error)';
};

test('scanBencode finds the end of one value and asks for more when cut', () => {
  const msg = 'd7:command4:ping5:flagsl1:ai-3eee';
  assert.equal(scanBencode(b(msg + 'XYZ'), 0), msg.length);
  for (let cut = 1; cut < msg.length; cut++) assert.equal(scanBencode(b(msg.slice(0, cut)), 0), -1, `cut at ${cut}`);
  assert.equal(scanBencode(b('xx 4:spam'), 3), 9);
  assert.equal(scanBencode(b('i-0e'), 0), 4);
  assert.equal(scanBencode(b('0:'), 0), 2);
});

test('scanBencode refuses what can never be bencode', () => {
  for (const bad of ['e', 'x', 'i03e', 'i-e', 'ie', 'i1x', '03:abc', '1x', 'di1e1:ae', 'd1:ae', `i${'9'.repeat(21)}e`, '9999999999:']) {
    assert.throws(() => scanBencode(b(bad), 0), FramingError, bad);
  }
});

test('scan bounds nesting without recursion and reports whether a cut value can be closed', () => {
  assert.equal(scanBencode(b('l'.repeat(MAX_DEPTH) + 'e'.repeat(MAX_DEPTH)), 0), 2 * MAX_DEPTH);
  assert.throws(() => scanBencode(b('l'.repeat(MAX_DEPTH + 1)), 0), /nesting too deep/);
  assert.throws(() => scanBencode(b('l'.repeat(100000)), 0), /nesting too deep/);
  assert.deepEqual(scan(b('d1:al'), 0), { end: -1, closable: true });
  assert.deepEqual(scan(b('d1:a'), 0), { end: -1, closable: false }, 'a key waiting for its value');
  assert.deepEqual(scan(b('d1:ai5'), 0), { end: -1, closable: false }, 'inside an integer');
  assert.deepEqual(scan(b('d1:a3:ab'), 0), { end: -1, closable: false }, 'inside a string');
});

test('decodeBencodeDict: strings as bytes, keys in order, first duplicate wins, rtpengine quirks', () => {
  assert.deepEqual(dec('d7:command4:ping5:flagsl1:ai-3ee3:sdp0:e'), { command: 'ping', flags: ['a', -3], sdp: '' });
  assert.deepEqual(Object.keys(decodeBencodeDict(b('d1:z1:a1:a1:be'))), ['z', 'a'], 'request key order is kept (unsorted is fine)');
  assert.deepEqual(dec('d7:command4:ping7:command5:offere'), { command: 'ping' });
  assert.deepEqual(dec('d7:command4:ping'), { command: 'ping' }, 'missing closing e');
  assert.deepEqual(dec('d7:command4:ping1:xl1:a'), { command: 'ping', x: ['a'] }, 'several missing');
  assert.deepEqual(dec('d7:command4:pingeTRAILING'), { command: 'ping' }, 'trailing bytes ignored');
  const raw = decodeBencodeDict(b('d3:sdp2:\xff\xfee'));
  assert.deepEqual(raw['sdp'], Buffer.from([0xff, 0xfe]), 'non-UTF-8 bytes survive');
  const proto = decodeBencodeDict(b('d9:__proto__d1:ai1eee'));
  assert.equal(Object.getPrototypeOf(proto), null);
  assert.ok(Object.hasOwn(proto, '__proto__'), '__proto__ is an ordinary key');
  assert.equal(Number(decodeBencodeDict(b('d1:xi12345678901234567890ee'))['x']), 12345678901234567890);
});

test('decodeBencodeDict error reasons match rtpengine', () => {
  assert.equal(reason(() => decodeBencodeDict(b('l4:pinge'))), 'Invalid NG data format');
  assert.equal(reason(() => decodeBencodeDict(b(''))), 'Invalid NG data format');
  for (const bad of ['d7:command4:pin', 'd7:command', 'd7:command4:ping1:xi5', 'd7:command4:pingi5e', 'd7:command4:ping ', 'ddd', `d1:x${'l'.repeat(100000)}`]) {
    assert.equal(reason(() => decodeBencodeDict(b(bad))), 'Could not decode bencode dictionary', bad.slice(0, 40));
  }
});

test('JSON requests: objects only, bencode-expressible values only', () => {
  assert.deepEqual(plain(decodeJsonDict(b('{"command":"list","limit":2,"flags":["a"],"x":true}'))), { command: 'list', limit: 2, flags: ['a'], x: 1 });
  assert.equal(Object.getPrototypeOf(decodeJsonDict(b('{"__proto__":{"a":"b"}}'))), null);
  for (const bad of ['{"command":', '[]', '"x"', '{"a":1}x', '\xff']) assert.equal(reason(() => decodeJsonDict(b(bad))), 'Failed to parse JSON document', bad);
  for (const bad of ['{"x":null}', '{"x":1.5}', '{"x":[null]}']) assert.equal(reason(() => decodeJsonDict(b(bad))), 'Could not decode bencode dictionary', bad);
  assert.equal(reason(() => decodeJsonDict(b('{"x":' + '['.repeat(5000) + ']'.repeat(5000) + '}'))), 'Failed to parse JSON document', 'too deep');
});

test('encodeBencode keeps insertion order and round-trips', () => {
  const reply = { sdp: 'v=0\r\n', result: 'ok', n: -7, l: [1, 'é', Buffer.from([0xff])], d: { z: 1, a: 2 } };
  const enc = encodeBencode(reply);
  assert.equal(enc.toString('latin1'), 'd3:sdp5:v=0\r\n6:result2:ok1:ni-7e1:lli1e2:\xc3\xa91:\xffe1:dd1:zi1e1:ai2eee');
  assert.deepEqual(Object.keys(decodeBencodeDict(enc)), ['sdp', 'result', 'n', 'l', 'd']);
  assert.equal(encodeBencode({ result: 'error', 'error-reason': 'x' }).toString(), 'd6:result5:error12:error-reason1:xe');
  assert.equal(encodeBencode({ a: NaN, b: 2.9 }).toString(), 'd1:ai0e1:bi2ee');
});

test('encodeBencode writes integers as String(n) does, on both sides of the int32 fast path', () => {
  const ns = [0, 9, 10, 99, 100, 999_999, 1_000_000_000, 1_795_386_391, 2_147_483_646, 2_147_483_647, 2_147_483_648,
    4_294_967_296, 10_000_000_000, 123_456_789_012_345, Number.MAX_SAFE_INTEGER, 2 ** 60, 1e21, -1, -2_147_483_648];
  for (const n of ns) assert.equal(encodeBencode([n]).toString(), `li${String(n)}ee`, String(n));
  // String lengths go through the same digits.
  for (const len of [9, 10, 64, 65, 100, 1000, 12_345]) assert.equal(encodeBencode(['x'.repeat(len)]).subarray(0, 8).toString(), `l${len}:xxxxxxx`.slice(0, 8));
});

test('encodeBencode: a reply past the 64 KiB scratch buffer is written whole, in one string or in many tokens, and the next one too', () => {
  const cookie = Buffer.from('c1');
  const long = 'é'.repeat(40_000); // 80,000 UTF-8 bytes in one token
  const many = Array.from({ length: 20_000 }, (_, i) => ({ i, s: `x${i}` }));
  for (const v of [{ long }, { many }, { many, long }] as NgDict[]) {
    const enc = encodeBencode(v, cookie);
    assert.ok(enc.length > 64 * 1024);
    assert.equal(enc.subarray(0, 3).toString(), 'c1 ');
    const back = decodeBencodeDict(enc.subarray(3));
    if ('long' in v) assert.equal((back['long'] as Buffer).toString('utf8'), long);
    if ('many' in v) {
      const l = back['many'] as NgDict[];
      assert.equal(l.length, 20_000);
      assert.equal(l[19_999]!['i'], 19_999);
      assert.equal((l[12_345]!['s'] as Buffer).toString(), 'x12345');
    }
  }
  assert.equal(encodeBencode({ result: 'ok' }, cookie).toString(), 'c1 d6:result2:oke');
});

test('encodeJson is compact, ordered, and turns bytes into text', () => {
  assert.equal(encodeJson({ result: 'pong' }).toString(), '{"result":"pong"}');
  assert.equal(encodeJson({ sdp: Buffer.from('v=0'), result: 'ok', calls: [] }).toString(), '{"sdp":"v=0","result":"ok","calls":[]}');
});

test('splitCookie: cookie up to the first space; none, no reply', () => {
  const f = splitCookie(b('5323_1 d7:command4:pinge'))!;
  assert.equal(f.cookie.toString(), '5323_1');
  assert.equal(f.payload.toString(), 'd7:command4:pinge');
  assert.equal(splitCookie(b('d7:command4:pinge')), null);
  assert.equal(splitCookie(b(' d7:command4:pinge')), null);
  assert.equal(splitCookie(b('c '))?.payload.length, 0);
});

test('scanJson finds object ends across strings and escapes', () => {
  const s = 'c {"a":"}\\"{","b":[{}]}';
  assert.equal(scanJson(b(s + '{"x":1}'), 2), s.length);
  assert.equal(scanJson(b('c {"a":"}'), 2), -1);
  assert.throws(() => scanJson(b('{'.repeat(1000)), 0), FramingError);
});
