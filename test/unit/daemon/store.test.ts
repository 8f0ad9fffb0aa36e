import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import knexFactory from 'knex';
import { Instance, type InstanceStateName } from '../../../daemon/instance.js';
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

// --- The shutdown drain (SIGTERM) against the operator's drain, across a restart. -------------

const URL = 'udp:127.0.0.1:2223';
const UNREACHABLE = 'postgres://u:p@127.0.0.1:1/x';

/** One run of the instance: an Instance and its Store on a state directory, as Operations builds them. */
function run(t: { after: (fn: () => Promise<void> | void) => void }, dir: string, dbUrl: string) {
  const table = { acceptingNewCalls: true, calls: 0, liveCalls() { return this.calls; } };
  const instance = new Instance(table, quiet);
  const store = new Store({
    dbUrl, instanceUrl: URL, name: 'test', setid: 0, version: 'x', stateDir: dir, pollMs: 50, recordDays: 0,
  }, instance, () => table.calls, quiet);
  t.after(() => store.close());
  store.restoreLocal();
  store.start();
  return { table, instance, store };
}

function database(t: { after: (fn: () => Promise<void> | void) => void }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const url = `sqlite:${path.join(dir, 'db.sqlite')}`;
  const db = knexFactory(knexConfig(url));
  t.after(() => db.destroy());
  const rows = async () => {
    const [kam, mine] = await Promise.all([db('rtpengine').where({ url: URL }).first(), db('rtprelay_instances').where({ url: URL }).first()]);
    return { disabled: Number(kam.disabled), wanted: mine.wanted as string, state: mine.state as string };
  };
  return { dir, url, db, rows };
}

/** A run as far as its first poll of the database: started_ms is this run's, the heartbeat after it. */
async function polled(db: knexFactory.Knex, started: number): Promise<void> {
  await until(async () => {
    const r = await db('rtprelay_instances').where({ url: URL }).first();
    return Number(r.started_ms) >= started && Number(r.heartbeat_ms) >= Number(r.started_ms);
  }, 'the first poll of this run');
}

/** SIGTERM as Operations does it: the shutdown drain, then the store closes once the calls are gone. */
async function shutDown(r: ReturnType<typeof run>): Promise<void> {
  r.instance.shutDown('shutdown');
  r.table.calls = 0;
  r.instance.check();
  await r.store.close();
}

test('a shutdown drain shows draining with Kamailio\'s row disabled; the next start is active and enables the row again', async (t) => {
  const { dir, url, db, rows } = database(t);
  const first = run(t, dir, url);
  first.table.calls = 1;
  await until(() => first.store.state === 'up', 'database up');
  first.instance.shutDown('shutdown');
  assert.equal(first.table.acceptingNewCalls, false);
  await until(async () => (await rows()).disabled === 1, 'Kamailio\'s row disabled while shutting down');
  assert.deepEqual(await rows(), { disabled: 1, wanted: 'active', state: 'draining' });
  await shutDown(first);
  assert.deepEqual(await rows(), { disabled: 1, wanted: 'active', state: 'drained' }, 'the last state reaches the database before close');
  assert.equal(JSON.parse(readFileSync(path.join(dir, 'instance-state.json'), 'utf8')).wanted, 'active');

  // Restarted while the database is away: the local file says active.
  const offline = run(t, dir, UNREACHABLE);
  assert.equal(offline.instance.state, 'active');
  assert.equal(offline.table.acceptingNewCalls, true);
  await offline.store.close();

  // Restarted with the database: active, and Kamailio's row enabled again.
  const started = Date.now();
  const second = run(t, dir, url);
  assert.equal(second.instance.state, 'active');
  await polled(db, started);
  assert.equal(second.instance.state, 'active');
  assert.deepEqual(await rows(), { disabled: 0, wanted: 'active', state: 'active' });
});

test('a shutdown drain with no database leaves the local file active', async (t) => {
  const { dir } = database(t);
  const first = run(t, dir, UNREACHABLE);
  await shutDown(first);
  assert.equal(run(t, dir, UNREACHABLE).instance.state, 'active');
});

/** How an operator asks for draining or disabled, before or during the shutdown drain. */
const explicit: { how: string; expect: 'draining' | 'disabled'; ask: (r: ReturnType<typeof run>, db: knexFactory.Knex) => Promise<void>; during: boolean }[] = [
  { how: 'CLI/HTTP drain before', expect: 'draining', during: false, ask: async (r) => r.instance.set('draining', 'http') },
  { how: 'CLI/HTTP disable before', expect: 'disabled', during: false, ask: async (r) => r.instance.set('disabled', 'http') },
  { how: 'SQL on wanted before', expect: 'draining', during: false, ask: async (r, db) => {
    await db('rtprelay_instances').where({ url: URL }).update({ wanted: 'draining' });
    await until(() => r.instance.wanted === 'draining', 'SQL drain seen');
  } },
  { how: 'Kamailio\'s disabled before', expect: 'disabled', during: false, ask: async (r, db) => {
    await db('rtpengine').where({ url: URL }).update({ disabled: 1 });
    await until(() => r.instance.wanted === 'disabled', 'Kamailio\'s disabled seen');
  } },
  { how: 'CLI/HTTP drain during', expect: 'draining', during: true, ask: async (r) => r.instance.set('draining', 'http') },
  { how: 'CLI/HTTP disable during', expect: 'disabled', during: true, ask: async (r) => r.instance.set('disabled', 'http') },
  { how: 'SQL on wanted during', expect: 'draining', during: true, ask: async (r, db) => {
    await db('rtprelay_instances').where({ url: URL }).update({ wanted: 'draining' });
    await until(() => r.instance.wanted === 'draining', 'SQL drain seen');
  } },
];

for (const e of explicit) {
  test(`an explicit drain or disable survives the restart, with or without the database: ${e.how} the shutdown`, async (t) => {
    const { dir, url, db, rows } = database(t);
    const first = run(t, dir, url);
    first.table.calls = 1;
    await until(() => first.store.state === 'up', 'database up');
    if (e.during) first.instance.shutDown('shutdown');
    await e.ask(first, db);
    await until(async () => (await rows()).wanted === e.expect, 'the wish written to our row');
    await shutDown(first);
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'instance-state.json'), 'utf8')).wanted, e.expect);
    assert.equal((await rows()).disabled, 1);

    const offline = run(t, dir, UNREACHABLE);
    assert.equal(offline.instance.state, e.expect === 'draining' ? 'drained' : 'disabled');
    assert.equal(offline.table.acceptingNewCalls, false);
    await offline.store.close();

    const started = Date.now();
    const second = run(t, dir, url);
    await polled(db, started);
    assert.equal(second.instance.wanted, e.expect);
    assert.equal(second.table.acceptingNewCalls, false);
    assert.deepEqual(await rows(), { disabled: 1, wanted: e.expect, state: e.expect === 'draining' ? 'drained' : 'disabled' });
  });
}

test('what an operator changed in the database while the instance was down wins at the next start', async (t) => {
  const { dir, url, db, rows } = database(t);
  const restart = async (): Promise<{ state: InstanceStateName; row: Awaited<ReturnType<typeof rows>> }> => {
    const started = Date.now();
    const r = run(t, dir, url);
    await polled(db, started);
    const state = r.instance.state;
    await shutDown(r);
    return { state, row: await rows() };
  };
  const first = run(t, dir, url);
  await until(() => first.store.state === 'up', 'database up');
  await shutDown(first);
  // After a shutdown drain (Kamailio's row still disabled), our wanted column set to draining.
  await db('rtprelay_instances').where({ url: URL }).update({ wanted: 'draining' });
  let r = await restart();
  assert.equal(r.state, 'drained');
  // Drained and shut down; Kamailio's row enabled again by SQL while down: active.
  await db('rtpengine').where({ url: URL }).update({ disabled: 0 });
  r = await restart();
  assert.equal(r.state, 'active');
  assert.equal(r.row.wanted, 'active', 'our wanted column follows Kamailio\'s');
  // Shut down; our wanted column set to disabled while down.
  await db('rtprelay_instances').where({ url: URL }).update({ wanted: 'disabled' });
  r = await restart();
  assert.equal(r.state, 'disabled');
  // Disabled and shut down; our wanted column set to active while down: active, Kamailio's row enabled.
  await db('rtprelay_instances').where({ url: URL }).update({ wanted: 'active' });
  r = await restart();
  assert.equal(r.state, 'active');
  // Stopped without a shutdown drain (SIGINT: the row left enabled), then disabled in Kamailio's row.
  const started = Date.now();
  const last = run(t, dir, url);
  await polled(db, started);
  await last.store.close();
  assert.equal((await rows()).disabled, 0);
  await db('rtpengine').where({ url: URL }).update({ disabled: 1 });
  r = await restart();
  assert.equal(r.state, 'disabled');
  assert.equal(r.row.wanted, 'disabled');
});
