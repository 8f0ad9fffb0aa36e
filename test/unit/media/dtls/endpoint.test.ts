import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCertificate, fingerprintOf, derOfPem, sameFingerprint, type DtlsCertificate } from '../../../../media/dtls/certificate.js';
import { DtlsEndpoint, isClientHello } from '../../../../media/dtls/endpoint.js';
import type { SrtpPair } from '../../../../media/transform.js';

interface Side { ep: DtlsEndpoint; keys: Promise<SrtpPair>; failed: Promise<string>; sent: Buffer[] }

function pair(certA: DtlsCertificate, certB: DtlsCertificate, fpForServer: string, fpForClient: string): { server: Side; client: Side } {
  const mk = (role: 'client' | 'server', cert: DtlsCertificate, fp: string, deliver: (b: Buffer) => void): Side => {
    let ok!: (k: SrtpPair) => void, bad!: (r: string) => void;
    const keys = new Promise<SrtpPair>((r) => { ok = r; });
    const failed = new Promise<string>((r) => { bad = r; });
    const sent: Buffer[] = [];
    const ep = new DtlsEndpoint({ role, cert, fingerprint: { hash: 'sha-256', value: fp }, timeoutMs: 5000 }, {
      send: (b) => { sent.push(b); setImmediate(() => deliver(b)); },
      onConnected: (k) => ok(k),
      onFailed: (r) => bad(r),
    });
    return { ep, keys, failed, sent };
  };
  // eslint-disable-next-line prefer-const
  let server: Side, client: Side;
  server = mk('server', certA, fpForServer, (b) => client.ep.receive(b, '127.0.0.1', 1000));
  client = mk('client', certB, fpForClient, (b) => server.ep.receive(b, '127.0.0.1', 2000));
  return { server, client };
}

test('certificate: fingerprints of the DER for every hash, upper-case hex with colons', async () => {
  const c = await createCertificate();
  assert.match(c.fingerprints['sha-256'], /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.match(c.fingerprints['sha-1'], /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
  assert.equal(c.fingerprints['sha-512'].split(':').length, 64);
  assert.equal(fingerprintOf(derOfPem(c.certPem), 'SHA-256'), c.fingerprints['sha-256']);
  assert.ok(sameFingerprint(c.fingerprints['sha-256'].toLowerCase(), c.fingerprints['sha-256']));
  const d = await createCertificate();
  assert.notEqual(c.fingerprints['sha-256'], d.fingerprints['sha-256']);
});

test('DTLS client and server endpoints agree on SRTP keys (RFC 5764 4.2 order)', async () => {
  const a = await createCertificate(), b = await createCertificate();
  const { server, client } = pair(a, b, b.fingerprints['sha-256'], a.fingerprints['sha-256']);
  client.ep.start();
  const [ks, kc] = await Promise.all([server.keys, client.keys]);
  assert.equal(server.ep.state, 'connected');
  assert.equal(client.ep.state, 'connected');
  assert.ok(isClientHello(client.sent[0]!));
  // What the client sends, the server decrypts, and the other way round.
  const rtp = Buffer.concat([Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7]), Buffer.alloc(160, 0x55)]);
  const c2s = kc.tx.protectRtp(rtp)!;
  assert.notDeepEqual(c2s.subarray(12, 172), rtp.subarray(12));
  assert.deepEqual(ks.rx.unprotectRtp(c2s), rtp);
  const s2c = ks.tx.protectRtp(rtp)!;
  assert.deepEqual(kc.rx.unprotectRtp(s2c), rtp);
  assert.equal(ks.tx.suite.name, kc.rx.suite.name);
  server.ep.close(); client.ep.close();
});

test('DTLS: a certificate that does not match the SDP fingerprint gives no keys', async () => {
  const a = await createCertificate(), b = await createCertificate(), other = await createCertificate();
  const { server, client } = pair(a, b, other.fingerprints['sha-256'], a.fingerprints['sha-256']);
  let gotKeys = false;
  void server.keys.then(() => { gotKeys = true; });
  client.ep.start();
  const reason = await server.failed;
  assert.match(reason, /fingerprint mismatch/);
  assert.equal(server.ep.state, 'failed');
  assert.equal(gotKeys, false);
  await client.keys; // the client side (matching fingerprint) completes; media still stops at the server
  server.ep.close(); client.ep.close();
});
