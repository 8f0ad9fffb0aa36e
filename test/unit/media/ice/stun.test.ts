import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTR, STUN_TYPE, buildBindingError, buildBindingRequest, buildBindingSuccess, buildStun, checkFingerprint,
  checkIntegrity, crc32, isStun, parseStun,
} from '../../../../media/ice/stun.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 5769 §2.1–2.3 (the USERNAME and SOFTWARE padding bytes are 0x20 in the RFC, on purpose).
const PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';
const REQUEST = hex(`00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf`);
const RESPONSE_V4 = hex(`01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`);
const RESPONSE_V6 = hex(`01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`);

test('RFC 5769 §2.1 sample request: attributes, integrity, fingerprint', () => {
  assert.ok(isStun(REQUEST));
  const m = parseStun(REQUEST)!;
  assert.equal(m.type, STUN_TYPE.bindingRequest);
  assert.deepEqual(m.transactionId, hex('b7e7a701bc34d686fa87dfae'));
  assert.equal(m.username, 'evtj:h6vY');
  assert.equal(m.priority, 0x6e0001ff);
  assert.equal(m.iceControlled, 0x932ff9b151263b36n);
  assert.equal(m.iceControlling, undefined);
  assert.equal(m.useCandidate, false);
  assert.deepEqual(m.unknownRequired, []);
  assert.ok(checkIntegrity(m, PASSWORD));
  assert.ok(checkIntegrity(m, Buffer.from(PASSWORD)));
  assert.ok(checkFingerprint(m));
  assert.equal(checkIntegrity(m, 'VOkJxbRl1RmTxUk/WvJxBu'), false, 'wrong password');
});

test('RFC 5769 §2.2–2.3 sample responses: XOR-MAPPED-ADDRESS IPv4 and IPv6', () => {
  const v4 = parseStun(RESPONSE_V4)!;
  assert.equal(v4.type, STUN_TYPE.bindingSuccess);
  assert.deepEqual(v4.xorMappedAddress, { family: 4, address: '192.0.2.1', port: 32853 });
  assert.ok(checkIntegrity(v4, PASSWORD) && checkFingerprint(v4));
  const v6 = parseStun(RESPONSE_V6)!;
  assert.deepEqual(v6.xorMappedAddress, { family: 6, address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
  assert.ok(checkIntegrity(v6, PASSWORD) && checkFingerprint(v6));
});

test('our success responses carry the RFC 5769 XOR-MAPPED-ADDRESS bytes, signed and fingerprinted', () => {
  const req = parseStun(REQUEST)!;
  for (const [resp, addr] of [[RESPONSE_V4, '192.0.2.1'], [RESPONSE_V6, '2001:db8:1234:5678:11:2233:4455:6677']] as const) {
    const xma = parseStun(resp)!.attrs.get(ATTR.XOR_MAPPED_ADDRESS)!;
    const ours = buildBindingSuccess(req, addr, 32853, PASSWORD)!;
    assert.deepEqual(ours.subarray(0, 20), Buffer.concat([resp.subarray(0, 2), Buffer.from([0, 4 + xma.length + 24 + 8]), resp.subarray(4, 20)]));
    assert.deepEqual(ours.subarray(20, 24 + xma.length), resp.subarray(xma.offset - 4, xma.offset + xma.length));
    const p = parseStun(ours)!;
    assert.equal(p.xorMappedAddress?.address, addr);
    assert.ok(checkIntegrity(p, PASSWORD) && checkFingerprint(p));
    assert.equal(checkIntegrity(p, 'other'), false);
  }
});

test('missing integrity, bad fingerprint, tampered body', () => {
  const noMi = buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12, 1), [[ATTR.USERNAME, Buffer.from('a:b')]]);
  const m = parseStun(noMi)!;
  assert.equal(m.integrityAt, -1);
  assert.equal(checkIntegrity(m, 'x'), false);
  assert.ok(checkFingerprint(m));
  const noFp = parseStun(buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12, 1), [], 'pw', false))!;
  assert.equal(checkFingerprint(noFp), false);
  assert.ok(checkIntegrity(noFp, 'pw'));

  const badFp = Buffer.from(REQUEST); badFp[badFp.length - 1]! ^= 1;
  const b = parseStun(badFp)!;
  assert.equal(checkFingerprint(b), false);
  assert.ok(checkIntegrity(b, PASSWORD), 'integrity does not cover the fingerprint');
  const tampered = Buffer.from(REQUEST); tampered[26]! ^= 1; // inside SOFTWARE
  const t = parseStun(tampered)!;
  assert.equal(checkIntegrity(t, PASSWORD), false);
  assert.equal(checkFingerprint(t), false);
});

test('attributes after MESSAGE-INTEGRITY are ignored; after FINGERPRINT the message is invalid', () => {
  const base = buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12, 2), [[ATTR.PRIORITY, hex('00000001')]], 'pw', false);
  // append USE-CANDIDATE after MI and fix the length
  const after = Buffer.concat([base, hex('00250000')]);
  after.writeUInt16BE(after.length - 20, 2);
  const m = parseStun(after)!;
  assert.equal(m.useCandidate, false);
  assert.ok(checkIntegrity(m, 'pw'), 'integrity covers up to MI only');
  const fp = buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12, 2), []);
  const bad = Buffer.concat([fp, hex('00250000')]);
  bad.writeUInt16BE(bad.length - 20, 2);
  assert.equal(parseStun(bad), null);
});

test('padding: odd-length values padded to 4, any padding bytes accepted', () => {
  const b = buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12), [[ATTR.USERNAME, Buffer.from('abcde')], [ATTR.PRIORITY, hex('01020304')]]);
  assert.equal(b.readUInt16BE(22), 5);
  assert.deepEqual(b.subarray(29, 32), Buffer.alloc(3), 'zero padding');
  const m = parseStun(b)!;
  assert.equal(m.username, 'abcde');
  assert.equal(m.priority, 0x01020304);
});

test('truncated and malformed messages are null, never a throw', () => {
  for (let n = 0; n < REQUEST.length; n++) {
    const cut = REQUEST.subarray(0, n);
    assert.equal(parseStun(cut), null, `cut at ${n}`);
  }
  const lying = Buffer.from(REQUEST); lying.writeUInt16BE(0x5c, 2); // length not a multiple of 4 … or too long
  assert.equal(parseStun(lying), null);
  const attrTooLong = Buffer.from(REQUEST); attrTooLong.writeUInt16BE(0x0100, 22);
  assert.equal(parseStun(attrTooLong), null);
  const badCookie = Buffer.from(REQUEST); badCookie[4] = 0;
  assert.equal(isStun(badCookie), false);
  assert.equal(isStun(Buffer.from([0x80, 0, 0, 0, 0x21, 0x12, 0xa4, 0x42, ...new Array(12).fill(0)])), false, 'RTP first byte');
  const badMi = buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12), [[ATTR.MESSAGE_INTEGRITY, Buffer.alloc(19)]], undefined, false);
  assert.equal(parseStun(badMi), null);
  const badAddr = buildStun(STUN_TYPE.bindingSuccess, Buffer.alloc(12), [[ATTR.XOR_MAPPED_ADDRESS, hex('0003000001020304')]]);
  assert.equal(parseStun(badAddr), null);
  for (let i = 0; i < 2000; i++) {
    const r = Buffer.from(REQUEST);
    r[20 + (i % (r.length - 20))] = (i * 37) & 0xff;
    const m = parseStun(r);
    if (m) { checkIntegrity(m, PASSWORD); checkFingerprint(m); }
  }
});

test('binding request for a connectivity check (RFC 8445 §7.2.2)', () => {
  const { transactionId, message } = buildBindingRequest({
    username: 'R:L', password: 'remotepw', priority: 0x6e7f00ff, controlling: 0x0102030405060708n, useCandidate: true,
  });
  const m = parseStun(message)!;
  assert.equal(m.type, STUN_TYPE.bindingRequest);
  assert.deepEqual(m.transactionId, transactionId);
  assert.equal(m.username, 'R:L');
  assert.equal(m.priority, 0x6e7f00ff);
  assert.equal(m.iceControlling, 0x0102030405060708n);
  assert.equal(m.useCandidate, true);
  assert.ok(checkIntegrity(m, 'remotepw') && checkFingerprint(m));
  const c = parseStun(buildBindingRequest({ username: 'a:b', password: 'p', priority: 1, controlled: 0xffffffffffffffffn }).message)!;
  assert.equal(c.iceControlled, 0xffffffffffffffffn);
  assert.notDeepEqual(c.transactionId, transactionId);
});

test('success and error responses', () => {
  const req = parseStun(REQUEST)!;
  const ok = parseStun(buildBindingSuccess(req, '::1', 5000, 'localpw')!)!;
  assert.deepEqual(ok.xorMappedAddress, { family: 6, address: '::1', port: 5000 });
  assert.deepEqual(ok.transactionId, req.transactionId);
  assert.ok(checkIntegrity(ok, 'localpw') && checkFingerprint(ok));
  assert.deepEqual(parseStun(buildBindingSuccess(req, '::ffff:10.0.0.1', 1, 'p')!)!.xorMappedAddress?.address, '::ffff:a00:1');
  assert.equal(buildBindingSuccess(req, 'not-an-ip', 1, 'p'), null);

  const e = parseStun(buildBindingError(req, 487, 'Role Conflict', 'localpw'))!;
  assert.equal(e.type, STUN_TYPE.bindingError);
  assert.deepEqual(e.errorCode, { code: 487, reason: 'Role Conflict' });
  assert.ok(checkIntegrity(e, 'localpw'));
  const u = parseStun(buildBindingError(req, 401, 'Unauthenticated'))!;
  assert.equal(u.integrityAt, -1);
  assert.ok(checkFingerprint(u));

  const withUnknown = parseStun(buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12), [[0x0777, Buffer.alloc(4)], [0xc001, Buffer.alloc(1)]]))!;
  assert.deepEqual(withUnknown.unknownRequired, [0x0777], 'comprehension-optional 0xc001 is not listed');
  const r420 = parseStun(buildBindingError(withUnknown, 420, 'Unknown Attribute'))!;
  const ua = r420.attrs.get(ATTR.UNKNOWN_ATTRIBUTES)!;
  assert.equal(r420.raw.readUInt16BE(ua.offset), 0x0777);
});

test('CRC-32 check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});
