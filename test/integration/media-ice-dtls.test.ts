// ICE and DTLS-SRTP on relay sockets (LocalMediaPlane, plans by hand, real UDP on 127.0.0.1): the
// test plays the browser with media/ice/stun.ts and a werift DtlsClient.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { DtlsClient } from 'werift';
import { LocalMediaPlane } from '../../media/relay.js';
import { createCertificate, type DtlsCertificate } from '../../media/dtls/certificate.js';
import { createSrtpContext } from '../../media/srtp/context.js';
import { srtpSuiteByDtlsProfile } from '../../media/srtp/suites.js';
import {
  buildBindingRequest, buildStun, checkFingerprint, checkIntegrity, parseStun, STUN_TYPE, ATTR, type StunMessage,
} from '../../media/ice/stun.js';
import type { PlaneEvent, SocketIce, SocketPlan } from '../../media/plane.js';
import { udpPeer, rtp, type Peer } from '../support/media.js';

function basePlan(id: number, remote: { address: string; port: number } | null, sink: number | null): SocketPlan {
  return {
    id, kind: 'rtp', remote, sink, forward: true, asymmetric: false, strictSource: false, mediaHandover: false,
    payloadTypes: [], rtcpMux: true, rtcpSink: null,
  };
}

/** A raw UDP socket with a queue of what arrives, split into STUN and the rest. */
async function rawSocket(t: TestContext) {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.after(() => { try { sock.close(); } catch { /* closed */ } });
  const stun: StunMessage[] = [];
  const other: Buffer[] = [];
  let onOther: ((b: Buffer) => void) | null = null;
  sock.on('message', (m) => {
    if (m[0]! < 4) { const p = parseStun(m); if (p) stun.push(p); } else if (onOther) onOther(m); else other.push(m);
  });
  const port = sock.address().port;
  return {
    sock, port, stun, other,
    setOther(f: (b: Buffer) => void) { onOther = f; },
    send: (b: Buffer, p: number) => new Promise<void>((r) => sock.send(b, p, '127.0.0.1', () => r())),
  };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  for (let i = 0; i < ms / 20 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), 'condition reached in time');
}

async function makePlane(t: TestContext, cert?: DtlsCertificate) {
  const base = 56000 + 2 * Math.floor(Math.random() * 2000);
  const plane = new LocalMediaPlane({ min: base, max: base + 9 }, { nowMs: Date.now() }, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  if (cert) plane.setCertificate(cert);
  const events: PlaneEvent[] = [];
  plane.onEvent((e) => events.push(e));
  const pa = await plane.openPair('127.0.0.1'), pb = await plane.openPair('127.0.0.1');
  return { plane, pa, pb, events };
}

const ICE_LITE: SocketIce = {
  localUfrag: 'ourU', localPwd: 'ourpassword0123456789012', remoteUfrag: 'brwU', remotePwd: 'browserpassword012345678',
  controlling: false, lite: true, candidates: [],
};

test('ICE-lite: checks answered with XOR-MAPPED-ADDRESS, integrity and fingerprint; bad ones rejected or ignored; media only from a checked address', async (t) => {
  const { plane, pa, pb } = await makePlane(t);
  const br = await rawSocket(t);
  const b = await udpPeer(t);
  plane.install([
    { ...basePlan(pa.rtp, { address: '127.0.0.1', port: br.port }, pb.rtp), ice: ICE_LITE },
    { ...basePlan(pb.rtp, { address: b.address, port: b.port }, pa.rtp), rtcpMux: false },
  ]);
  // Before any check, media to the browser side goes nowhere (no validated pair).
  await b.send(rtp({ seq: 1 }), pb.port);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(br.other.length, 0);
  assert.equal(plane.stats([pa.rtp])[0]!.remote, null);

  // Wrong password → 401 without integrity.
  const wrong = buildBindingRequest({ username: 'ourU:brwU', password: 'not-the-password', priority: 1, controlling: 1n });
  await br.send(wrong.message, pa.port);
  await until(() => br.stun.length === 1);
  assert.equal(br.stun[0]!.type, STUN_TYPE.bindingError);
  assert.equal(br.stun[0]!.errorCode?.code, 401);
  // Wrong username → 401.
  const user = buildBindingRequest({ username: 'other:brwU', password: ICE_LITE.localPwd, priority: 1, controlling: 1n });
  await br.send(user.message, pa.port);
  await until(() => br.stun.length === 2);
  assert.equal(br.stun[1]!.errorCode?.code, 401);
  // No MESSAGE-INTEGRITY → 400.
  const noMi = buildStun(STUN_TYPE.bindingRequest, Buffer.alloc(12, 7), [[ATTR.USERNAME, Buffer.from('ourU:brwU')]]);
  await br.send(noMi, pa.port);
  await until(() => br.stun.length === 3);
  assert.equal(br.stun[2]!.errorCode?.code, 400);
  // Bad FINGERPRINT → silently dropped.
  const fp = buildBindingRequest({ username: 'ourU:brwU', password: ICE_LITE.localPwd, priority: 1, controlling: 1n });
  fp.message[fp.message.length - 1]! ^= 0xff;
  await br.send(fp.message, pa.port);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(br.stun.length, 3);

  // A good check with USE-CANDIDATE: success, signed with our password, our view of its address.
  const ok = buildBindingRequest({ username: 'ourU:brwU', password: ICE_LITE.localPwd, priority: 1, controlling: 1n, useCandidate: true });
  await br.send(ok.message, pa.port);
  await until(() => br.stun.length === 4);
  const res = br.stun[3]!;
  assert.equal(res.type, STUN_TYPE.bindingSuccess);
  assert.deepEqual(res.transactionId, ok.transactionId);
  assert.ok(checkIntegrity(res, ICE_LITE.localPwd));
  assert.ok(checkFingerprint(res));
  assert.deepEqual(res.xorMappedAddress, { family: 4, address: '127.0.0.1', port: br.port });
  const st = plane.stats([pa.rtp])[0]!;
  assert.equal(st.ice, 'connected');
  assert.deepEqual(st.remote, { address: '127.0.0.1', port: br.port });

  // Media now flows to the validated pair; media from an unchecked address is dropped.
  await b.send(rtp({ seq: 2 }), pb.port);
  await until(() => br.other.length === 1);
  const stranger = await udpPeer(t);
  await stranger.send(rtp({ seq: 5, ssrc: 9 }), pa.port);
  await br.send(rtp({ seq: 6, ssrc: 9 }), pa.port);
  const got = await b.recv();
  assert.ok(got);
  assert.equal(got.msg.readUInt16BE(2), 6);
  assert.equal(await b.recv(200), null);
});

test('full ICE, controlling: checks to the candidate, nomination, then media to the selected pair', async (t) => {
  const { plane, pa, pb, events } = await makePlane(t);
  const br = await rawSocket(t);
  const b = await udpPeer(t);
  const ice: SocketIce = {
    ...ICE_LITE, lite: false, controlling: true,
    candidates: [{ foundation: '1', component: 1, priority: 2130706431, address: '127.0.0.1', port: br.port, type: 'host' }],
  };
  plane.install([
    { ...basePlan(pa.rtp, { address: '127.0.0.1', port: br.port }, pb.rtp), ice },
    { ...basePlan(pb.rtp, { address: b.address, port: b.port }, pa.rtp), rtcpMux: false },
  ]);
  // The browser answers every check it gets.
  let nominated = false;
  const answer = async (): Promise<void> => {
    while (br.stun.length > 0) {
      const req = br.stun.shift()!;
      assert.equal(req.type, STUN_TYPE.bindingRequest);
      assert.equal(req.username, 'brwU:ourU');
      assert.ok(checkIntegrity(req, ice.remotePwd!));
      assert.ok(req.iceControlling !== undefined);
      if (req.useCandidate) nominated = true;
      const ok = buildStun(STUN_TYPE.bindingSuccess, req.transactionId, [], ice.remotePwd!);
      await br.send(ok, pa.port);
    }
  };
  for (let i = 0; i < 100 && !events.some((e) => e.type === 'ice'); i++) { await answer(); await new Promise((r) => setTimeout(r, 20)); }
  assert.ok(nominated, 'a check carried USE-CANDIDATE');
  const ev = events.find((e) => e.type === 'ice');
  assert.deepEqual(ev, { type: 'ice', id: pa.rtp, state: 'connected', remote: { address: '127.0.0.1', port: br.port } });
  await b.send(rtp({ seq: 3 }), pb.port);
  await until(() => br.other.length === 1);
});

/** A werift DtlsClient over a raw socket towards the relay port; `tap` sees each datagram it sends. */
function browserDtls(br: Awaited<ReturnType<typeof rawSocket>>, relayPort: number, cert: DtlsCertificate, tap: (b: Buffer) => void = () => undefined) {
  const transport = {
    type: 'udp', address: { address: '127.0.0.1', port: br.port, family: 'IPv4' }, closed: false,
    onData: (_d: Buffer, _a?: unknown) => undefined as void,
    send: async (d: Buffer) => { tap(d); await br.send(d, relayPort); },
    close: async () => undefined,
  };
  const client = new DtlsClient({
    transport: transport as never, cert: cert.certPem, key: cert.keyPem, signatureHash: { hash: 4, signature: 3 } as never,
    srtpProfiles: [1, 7] as never, extendedMasterSecret: true,
  });
  br.setOther((m) => { if (m[0]! >= 20 && m[0]! <= 63) transport.onData(m, { address: '127.0.0.1', port: relayPort }); else br.other.push(m); });
  return client;
}

async function dtlsCall(t: TestContext, fingerprintOk: boolean, third?: Peer) {
  const relayCert = await createCertificate(), browserCert = await createCertificate(), other = await createCertificate();
  const { plane, pa, pb, events } = await makePlane(t, relayCert);
  const br = await rawSocket(t);
  const b = await udpPeer(t);
  const fp = (fingerprintOk ? browserCert : other).fingerprints['sha-256'];
  plane.install([
    { ...basePlan(pa.rtp, { address: '127.0.0.1', port: br.port }, pb.rtp), ice: ICE_LITE,
      crypto: { sdes: null, dtls: { role: 'server', fingerprint: { hash: 'sha-256', value: fp } } } },
    { ...basePlan(pb.rtp, { address: b.address, port: b.port }, pa.rtp), rtcpMux: false },
  ]);
  // ICE first (DTLS is only taken from a validated pair).
  const chk = buildBindingRequest({ username: 'ourU:brwU', password: ICE_LITE.localPwd, priority: 1, controlling: 1n, useCandidate: true });
  await br.send(chk.message, pa.port);
  await until(() => plane.stats([pa.rtp])[0]!.ice === 'connected');
  let hellos = 0;
  const client = browserDtls(br, pa.port, browserCert, (d) => {
    // A third party replays the browser's ClientHello from its own address, mid-handshake.
    if (third && d[0] === 22 && d[13] === 1) { hellos++; void third.send(Buffer.from(d), pa.port); }
  });
  const connected = new Promise<void>((r) => client.onConnect.subscribe(() => r()));
  void client.connect().catch(() => undefined);
  await connected;
  if (third) assert.ok(hellos >= 1);
  const ev = await (async () => { await until(() => events.some((e) => e.type === 'dtls')); return events.find((e) => e.type === 'dtls')!; })();
  return { plane, pa, pb, b, br, client, ev, events };
}

function browserKeys(client: DtlsClient) {
  const suite = srtpSuiteByDtlsProfile(client.srtp.srtpProfile as number)!;
  const k = suite.keyLength, s = suite.saltLength;
  const m = client.exportKeyingMaterial('EXTRACTOR-dtls_srtp', 2 * (k + s));
  return {
    tx: createSrtpContext(suite, Buffer.from(m.subarray(0, k)), Buffer.from(m.subarray(2 * k, 2 * k + s))),
    rx: createSrtpContext(suite, Buffer.from(m.subarray(k, 2 * k)), Buffer.from(m.subarray(2 * k + s, 2 * (k + s)))),
  };
}

test('DTLS-SRTP (we are server) over ICE-lite: handshake, keys exported, SRTP both ways', async (t) => {
  const { plane, pa, pb, b, br, client, ev } = await dtlsCall(t, true);
  assert.deepEqual(ev, { type: 'dtls', id: pa.rtp, state: 'connected', reason: null });
  assert.equal(plane.stats([pa.rtp])[0]!.dtls, 'connected');
  const k = browserKeys(client);
  const clear = rtp({ seq: 100, ssrc: 0xcafe });
  await br.send(k.tx.protectRtp(clear)!, pa.port);
  const got = await b.recv();
  assert.ok(got);
  assert.deepEqual(got.msg, clear);
  const back = rtp({ seq: 7, ssrc: 0xbeef });
  await b.send(back, pb.port);
  await until(() => br.other.length === 1);
  assert.deepEqual(k.rx.unprotectRtp(br.other[0]!), back);
});

test('DTLS: a peer certificate that does not match the SDP fingerprint gives no keys and no media', async (t) => {
  const { plane, pa, pb, b, br, client, ev } = await dtlsCall(t, false);
  assert.equal(ev.type, 'dtls');
  assert.equal((ev as { state: string }).state, 'failed');
  assert.match((ev as { reason: string }).reason, /fingerprint/);
  assert.equal(plane.stats([pa.rtp])[0]!.dtls, 'failed');
  const k = browserKeys(client);
  await br.send(k.tx.protectRtp(rtp({ seq: 1 }))!, pa.port);
  assert.equal(await b.recv(300), null);
  await b.send(rtp({ seq: 2 }), pb.port);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(br.other.length, 0);
});

test('DTLS: a ClientHello from a third address during the handshake does not disturb it, and gets no answer', async (t) => {
  const third = await udpPeer(t);
  const { pa, b, br, client, ev } = await dtlsCall(t, true, third);
  assert.equal((ev as { state: string }).state, 'connected');
  // After the session is up, the same ClientHello from the browser's own address changes nothing either.
  const k = browserKeys(client);
  assert.equal(await third.recv(200), null);
  await br.send(k.tx.protectRtp(rtp({ seq: 1, ssrc: 5 }))!, pa.port);
  assert.ok(await b.recv());
});
