// Call recordings: one row per file a recording wrote (pcap, WAV per party, mixed WAV, metadata).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('rtprelay_recordings', (t) => {
    t.increments('id');
    t.string('instance_url', 64).notNullable();
    t.string('call_id', 255).notNullable().index();
    t.string('path', 1024).notNullable();
    /** pcap, wav (one party), mix, metadata. */
    t.string('kind', 16).notNullable();
    t.string('tag', 255).nullable();
    t.bigInteger('bytes').notNullable().defaultTo(0);
    t.bigInteger('started_ms').notNullable().index();
    t.bigInteger('ended_ms').notNullable();
    t.text('metadata').nullable();
    /** Why the recording stopped early (full disk, …); null when it ended normally. */
    t.string('error', 255).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rtprelay_recordings');
}
