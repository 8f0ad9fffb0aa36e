import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import knexFactory from 'knex';
import { Instance } from '../../../daemon/instance.js';
import { Store, knexConfig } from '../../../daemon/store.js';
import { until } from '../../support/net.js';

const quiet = pino({ level: 'silent' });

function setup(t: { after: (fn: () => void) => void }, dbUrl?: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const table = { acceptingNewCalls: true, calls: 0, liveCalls() { return this.calls; } };
  const instance = new Instance(table, quiet);
  const url = dbUrl ?? `sqlite:${path.join(dir, 'db.sqlite')}`;
  const store = new Store({
    dbUrl: url, instanceUrl: 'udp:127.0.0.1:2223', name: 'test', setid: 0, version: 'x', stateDir: dir, pollMs: 50, recordDays: 30,
  }, instance, () => table.calls, quiet);
  return { dir, table, instance, store, url };
}


test('migrates a new SQLite file, registers Kamailio\'s row and our own, with the version row Kamailio checks', async (t) => {
  const { store, url } = setup(t);
  t.after(() => store.close());
  store.start();
  await until(() => store.state === 'up', 'database up');
  const db = knexFactory(knexConfig(url));
  t.after(() => db.destroy());
  const rows = await db('rtpengine').select();
  assert.equal(rows.length, 1);
  assert.equal(rows[0].url, 'udp:127.0.0.1:2223');
  assert.equal(rows[0].setid, 0);
  assert.equal(rows[0].weight, 1);
  assert.equal(rows[0].disabled, 0);
  assert.deepEqual(await db('version').where({ table_name: 'rtpengine' }).select('table_version'), [{ table_version: 1 }]);
  const mine = await db('rtprelay_instances').first();
  assert.equal(mine.state, 'active');
  assert.ok(Number(mine.heartbeat_ms) > 0);
});

test('draining set by SQL takes effect, reports drained when calls end, and survives a restart without the database', async (t) => {
  const { store, url, instance, table, dir } = setup(t);
  table.calls = 2;
  store.start();
  await until(() => store.state === 'up', 'database up');
  const db = knexFactory(knexConfig(url));
  t.after(() => db.destroy());
  await db('rtprelay_instances').update({ wanted: 'draining' });
  await until(() => instance.state === 'draining', 'draining');
  assert.equal(table.acceptingNewCalls, false);
  table.calls = 0;
  await until(() => instance.state === 'drained', 'drained');
  await until(async () => (await db('rtprelay_instances').first()).state === 'drained', 'drained written back');
  await store.close();
  // Restart with the database unreachable: the local state file keeps it draining.
  const table2 = { acceptingNewCalls: true, liveCalls: () => 1 };
  const instance2 = new Instance(table2, quiet);
  const store2 = new Store({
    dbUrl: 'postgres://u:p@127.0.0.1:1/x', instanceUrl: 'udp:127.0.0.1:2223', name: 't', setid: 0, version: 'x', stateDir: dir, pollMs: 50, recordDays: 0,
  }, instance2, () => 1, quiet);
  t.after(() => store2.close());
  store2.restoreLocal();
  assert.equal(instance2.state, 'draining');
  assert.equal(table2.acceptingNewCalls, false);
});

test('Kamailio\'s disabled column disables; enabling again accepts at once', async (t) => {
  const { store, url, instance, table } = setup(t);
  t.after(() => store.close());
  store.start();
  await until(() => store.state === 'up', 'database up');
  const db = knexFactory(knexConfig(url));
  t.after(() => db.destroy());
  await db('rtpengine').update({ disabled: 1 });
  await until(() => instance.state === 'disabled', 'disabled');
  await db('rtpengine').update({ disabled: 0 });
  await until(() => instance.state === 'active', 'active again');
  assert.equal(table.acceptingNewCalls, true);
});

test('a hanging database (accepts, never answers) does not block start and is retried in the background', async (t) => {
  const sockets: net.Socket[] = [];
  const hang = net.createServer((s) => { sockets.push(s); });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
  t.after(() => { for (const s of sockets) s.destroy(); hang.close(); });
  const port = (hang.address() as net.AddressInfo).port;
  const { store } = setup(t, `postgres://u:p@127.0.0.1:${port}/x`);
  t.after(() => store.close());
  const started = Date.now();
  store.start();
  assert.ok(Date.now() - started < 100, 'start returns at once');
  await until(() => sockets.length > 0, 'a connection attempt');
  await until(() => store.state === 'down', 'reported down after the connect timeout', 10_000);
});

test('call records are buffered while the database is away and written when it comes up', async (t) => {
  const { store, url } = setup(t);
  t.after(() => store.close());
  const now = Date.now();
  store.record({ callId: 'r1', fromTag: 'a', toTag: 'b', startedMs: now - 4000, endedMs: now, reason: 'delete',
    a: { packets: 10, bytes: 1720, lost: 0, jitterMs: 0, mos: null }, b: { packets: 9, bytes: 1548, lost: 1, jitterMs: 2, mos: null } });
  store.start();
  const db = knexFactory(knexConfig(url));
  t.after(() => db.destroy());
  await until(() => store.state === 'up', 'database up');
  await until(async () => (await db('rtprelay_calls').select()).length === 1, 'record written');
  const r = await db('rtprelay_calls').first();
  assert.equal(r.call_id, 'r1');
  assert.equal(r.duration_ms, 4000);
  assert.equal(Number(r.a_packets), 10);
  assert.equal(Number(r.b_lost), 1);
});
