// Migrations and instance rows on PostgreSQL, through the real daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import knexFactory from 'knex';
import { knexConfig } from '../../daemon/store.js';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startDaemon } from '../support/daemon.js';
import { startPostgres } from '../support/postgres.js';
import { sdp } from '../support/media.js';
import { until } from '../support/net.js';

const MIGRATIONS = readdirSync(path.join(ROOT, 'dist/migrations')).filter((f) => f.endsWith('.js')).sort();

let n = 0;
/** A new call's offer (each attempt its own call-id, so an accepted one does not hide a later refusal). */
const newCall = async (d: { ng: { cmd: (x: Record<string, string>) => Promise<Record<string, unknown>> } }) =>
  (await d.ng.cmd({ command: 'offer', 'call-id': `pg-new-${++n}`, 'from-tag': 'a', sdp: sdp({ port: 7000 }) }))['error-reason'];


test('PostgreSQL: migrations run on first start, the instance registers, drain by SQL refuses new calls, call records land', async (t) => {
  const pg = await startPostgres(t);
  if ('skip' in pg) return t.skip(pg.skip);
  const d = await startDaemon(t, [`--db-url=${pg.url}`, '--instance-url=udp:127.0.0.1:2223', '--instance-name=pg-test']);
  const db = knexFactory(knexConfig(pg.url));
  t.after(() => db.destroy());
  await until(async () => (await db('rtprelay_instances').where({ url: 'udp:127.0.0.1:2223' })).length === 1, 'instance row');
  const kam = await db('rtpengine').where({ url: 'udp:127.0.0.1:2223' }).first();
  assert.equal(kam.setid, 0);
  assert.equal(kam.weight, 1);
  assert.equal(kam.disabled, 0);
  assert.equal((await db('version').where({ table_name: 'rtpengine' }).first()).table_version, 1);
  const migrations = await db('knex_migrations').select('name');
  assert.deepEqual(migrations.map((m: { name: string }) => m.name), MIGRATIONS, 'every migration ran, in order');

  const ok = await d.ng.cmd({ command: 'offer', 'call-id': 'pg1', 'from-tag': 'a', sdp: sdp({ port: 7000 }) });
  assert.equal(ok.result, 'ok');
  await d.ng.cmd({ command: 'delete', 'call-id': 'pg1' });
  await until(async () => (await db('rtprelay_calls').where({ call_id: 'pg1' })).length === 1, 'call record');

  await db('rtprelay_instances').where({ url: 'udp:127.0.0.1:2223' }).update({ wanted: 'draining' });
  await until(async () => (await newCall(d)) === 'Parallel session limit reached', 'drain to take effect', 2500);
  // The calls accepted before the drain took effect end; then the instance reports drained.
  // (`list` gives 32 by default: ask for all of them.)
  for (const id of (await d.ng.cmd({ command: 'list', limit: 10_000 })).calls as unknown as string[]) await d.ng.cmd({ command: 'delete', 'call-id': id });
  await until(async () => (await db('rtprelay_instances').first()).state === 'drained', 'drained reported');
  // A restart migrates nothing again and keeps the row.
  await d.stop();
  const d2 = await startDaemon(t, [`--db-url=${pg.url}`, '--instance-url=udp:127.0.0.1:2223', `--state-dir=${d.stateDir}`]);
  assert.equal(await newCall(d2), 'Parallel session limit reached', 'still draining right after restart (local state)');
  assert.equal((await db('knex_migrations').select()).length, MIGRATIONS.length, 'nothing ran twice');
  assert.equal((await db('rtpengine').select()).length, 1);
});
