// Two rtprelay instances share one SQLite database; Kamailio's rtpengine module reads its
// instance list from the same `rtpengine` table. After one instance is drained through the
// table, Kamailio's new calls all land on the other one (the drained instance answers
// `load limit`, which makes the module try the next instance).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { knexConfig } from '../../daemon/store.js';
import { ROOT, startDaemon, type Daemon } from '../support/daemon.js';
import { freeUdpPort, until } from '../support/net.js';

const KAMAILIO = ['/usr/sbin/kamailio', '/usr/bin/kamailio'].find((p) => existsSync(p));
const SQLITE_MODULE = ['/usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so', '/usr/lib/kamailio/modules/db_sqlite.so'];


function invite(sipPort: number, callId: string, localPort: number): Buffer {
  const body = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 7000 RTP/AVP 0', ''].join('\r\n');
  return Buffer.from([
    `INVITE sip:bob@127.0.0.1:${sipPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    `From: <sip:alice@127.0.0.1>;tag=from-${callId}`,
    `To: <sip:bob@127.0.0.1:${sipPort}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:alice@127.0.0.1:${localPort}>`,
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '', body,
  ].join('\r\n'));
}

test('Kamailio reading the shared instances table sends new calls elsewhere once an instance is drained', async (t) => {
  if (!KAMAILIO) return t.skip('kamailio is not installed (.ci/run installs it)');
  if (!SQLITE_MODULE.some((m) => existsSync(m))) return t.skip('kamailio-sqlite-modules is not installed (.ci/run installs it)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-kamdb-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dbFile = path.join(dir, 'shared.sqlite');
  const dbUrl = `sqlite:${dbFile}`;
  // Each instance learns its NG port at start; --instance-url must name it, so start, read, restart.
  const instances: Daemon[] = [];
  for (const name of ['a', 'b']) {
    const probe = await startDaemon(t, ['--db-url=none']);
    const port = probe.ngPort;
    await probe.stop();
    instances.push(await startDaemon(t, [`--listen-ng=127.0.0.1:${port}`, `--db-url=${dbUrl}`, `--instance-url=udp:127.0.0.1:${port}`, `--instance-name=${name}`]));
  }
  const [a, b] = instances as [Daemon, Daemon];
  const db = knexFactory(knexConfig(dbUrl));
  t.after(() => db.destroy());
  await until(async () => (await db('rtpengine').select()).length === 2, 'both instances registered');

  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.after(() => sock.close());
  const localPort = sock.address().port;
  const replies = new Map<string, string>();
  sock.on('message', (m) => {
    const text = m.toString();
    const cid = /^Call-ID: *(.+)$/mi.exec(text)?.[1]?.trim();
    const status = /^SIP\/2\.0 (\d+)/.exec(text)?.[1];
    if (cid && status && status !== '100') replies.set(cid, status);
  });
  const sipPort = localPort + 1 < 65000 ? await freeUdpPort() : 5099;
  const cfg = path.join(dir, 'kamailio.cfg');
  writeFileSync(cfg, readFileSync(path.join(ROOT, 'test/fixtures/kamailio-db/kamailio.cfg'), 'utf8')
    .replaceAll('{{SIP_PORT}}', String(sipPort)).replaceAll('{{DB_URL}}', `sqlite:///${dbFile}` /* Kamailio drops one slash: four in all for an absolute path */));
  const check = spawnSync(KAMAILIO, ['-c', '-f', cfg], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  let kamLog = '';
  const kam = spawn(KAMAILIO, ['-DD', '-E', '-f', cfg, '-Y', dir, '-P', path.join(dir, 'kamailio.pid'), '-m', '32', '-M', '8', '-w', dir], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  kam.stderr!.on('data', (c) => { kamLog += c; });
  t.after(() => { try { process.kill(-kam.pid!, 'SIGKILL'); } catch { /* gone */ } });

  let n = 0;
  const call = async (): Promise<string> => {
    const id = `kdb-${++n}`;
    sock.send(invite(sipPort, id, localPort), sipPort, '127.0.0.1');
    await until(async () => replies.has(id), `Kamailio's final reply to ${id}\n${kamLog.slice(-2000)}`, 5000);
    return replies.get(id)!;
  };
  // Kamailio is up when it answers.
  await until(async () => { sock.send(invite(sipPort, `warmup-${n}`, localPort), sipPort, '127.0.0.1'); await new Promise((r) => setTimeout(r, 200)); return [...replies.keys()].some((k) => k.startsWith('warmup')); }, 'Kamailio to start').catch((e) => { throw new Error(`${(e as Error).message}\n${kamLog.slice(-3000)}`); });
  const calls = async (d: Daemon): Promise<number> => ((await d.ng.cmd({ command: 'list', limit: 1000 })).calls as string[]).filter((c) => c.startsWith('kdb-')).length;
  for (let i = 0; i < 12; i++) assert.equal(await call(), '488');
  const before = { a: await calls(a), b: await calls(b) };
  assert.equal(before.a + before.b, 12);
  assert.ok(before.a > 0 && before.b > 0, `Kamailio spread calls over both instances: ${JSON.stringify(before)}`);

  await db('rtprelay_instances').where({ url: `udp:127.0.0.1:${a.ngPort}` }).update({ wanted: 'draining' });
  await until(async () => JSON.stringify((await a.ng.cmd({ command: 'offer', 'call-id': `probe-${++n}`, 'from-tag': 'x', sdp: 'v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\n', supports: ['load limit'] })).result) === '"load limit"', 'instance a drains', 3000);
  for (let i = 0; i < 12; i++) assert.equal(await call(), '488', 'every new call still gets its offer through');
  const after = { a: await calls(a), b: await calls(b) };
  assert.equal(after.a, before.a, 'the drained instance got no new call');
  assert.equal(after.b, before.b + 12, 'the other instance took them all');
});

