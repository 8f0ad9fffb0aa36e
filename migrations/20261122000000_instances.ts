// Instances: Kamailio's own `rtpengine` table (read by its rtpengine module, unchanged) with the
// `version` row it checks, and rtprelay's per-instance state beside it, joined by the NG URL.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable('version'))) {
    await knex.schema.createTable('version', (t) => {
      t.increments('id');
      t.string('table_name', 32).notNullable().unique('version_t_name_idx');
      t.integer('table_version').notNullable().defaultTo(0);
    });
  }
  if (!(await knex.schema.hasTable('rtpengine'))) {
    await knex.schema.createTable('rtpengine', (t) => {
      t.increments('id');
      t.integer('setid').notNullable().defaultTo(0);
      t.string('url', 64).notNullable();
      t.integer('weight').notNullable().defaultTo(1);
      t.integer('disabled').notNullable().defaultTo(0);
      t.timestamp('stamp').notNullable().defaultTo('1900-01-01 00:00:01');
      t.unique(['setid', 'url'], { indexName: 'rtpengine_nodes' });
    });
  }
  // Kamailio 5.6's rtpengine module checks for table version 1.
  const v = await knex('version').where({ table_name: 'rtpengine' }).first();
  if (!v) await knex('version').insert({ table_name: 'rtpengine', table_version: 1 });
  await knex.schema.createTable('rtprelay_instances', (t) => {
    t.string('url', 64).primary();
    t.string('name', 64).notNullable().defaultTo('');
    // What the operator wants (active | draining | disabled) and what the instance reports back.
    t.string('wanted', 16).notNullable().defaultTo('active');
    t.string('state', 16).notNullable().defaultTo('active');
    t.bigInteger('heartbeat_ms').notNullable().defaultTo(0);
    t.string('version', 32).notNullable().defaultTo('');
    t.integer('calls').notNullable().defaultTo(0);
    t.bigInteger('started_ms').notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rtprelay_instances');
}
