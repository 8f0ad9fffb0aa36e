// Call records (what rtpproxy users called rtpstats): one row per ended call, per direction.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('rtprelay_calls', (t) => {
    t.increments('id');
    t.string('instance_url', 64).notNullable();
    t.string('call_id', 255).notNullable().index();
    t.string('from_tag', 255).notNullable().defaultTo('');
    t.string('to_tag', 255).notNullable().defaultTo('');
    t.bigInteger('started_ms').notNullable().index();
    t.bigInteger('ended_ms').notNullable();
    t.integer('duration_ms').notNullable();
    t.string('reason', 32).notNullable();
    for (const d of ['a', 'b']) {
      t.bigInteger(`${d}_packets`).notNullable().defaultTo(0);
      t.bigInteger(`${d}_bytes`).notNullable().defaultTo(0);
      t.integer(`${d}_lost`).notNullable().defaultTo(0);
      t.float(`${d}_jitter_ms`).notNullable().defaultTo(0);
      t.float(`${d}_mos`).nullable();
    }
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rtprelay_calls');
}
