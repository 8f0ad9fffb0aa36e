// The database (knex): migrations, this instance's rows, the operator's wanted state, call
// records. Everything runs in the background: the daemon never waits for the database, retries
// with backoff, logs each change of connection state once, and keeps the last known wanted
// state in a local file so that a draining instance restarted while the database is away
// keeps draining. A shutdown drain (SIGTERM) is not a wanted state: it shows in the `state`
// column and in Kamailio's `disabled`, never in `wanted` or the local file, so an ordinary
// restart comes back as the operator wanted.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import type { Logger } from 'pino';
import type { Instance, InstanceTarget } from './instance.js';
import type { CallRecord, DirectionStats } from './session/core.js';
export type { CallRecord, DirectionStats };

export interface StoreConfig {
  /** `sqlite:PATH`, `postgres://…`, `mysql://…`. */
  dbUrl: string;
  /** This instance's NG URL as Kamailio writes it (`udp:HOST:PORT`). */
  instanceUrl: string;
  name: string;
  setid: number;
  version: string;
  stateDir: string;
  pollMs: number;
  /** Call records older than this are removed (0: kept). */
  recordDays: number;
}

/** One file of a call recording (rtprelay_recordings). */
export interface RecordingRow {
  callId: string; path: string; kind: string; tag: string | null; bytes: number; startedMs: number; endedMs: number;
  metadata: string; error: string | null;
}

type DbState = 'connecting' | 'up' | 'down';

const MIGRATIONS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'migrations');
const MAX_BUFFERED_RECORDS = 50_000;

/** better-sqlite3 as knex's pool hands it out (the parts used here). */
interface SqliteStatement { run(params: unknown[]): unknown }
interface SqliteConnection { prepare(sql: string): SqliteStatement; transaction(fn: () => void): () => void }
interface SqliteClient { acquireConnection(): Promise<SqliteConnection>; releaseConnection(c: SqliteConnection): Promise<void> }

/**
 * A macrotask boundary between batches: awaiting knex alone resolves in microtasks, so a flush of
 * 2000 records held the main thread (and every NG command behind it) for 35-90 ms in one go.
 */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function knexConfig(dbUrl: string): Knex.Config {
  if (dbUrl.startsWith('sqlite:')) {
    return {
      client: 'better-sqlite3', connection: { filename: dbUrl.slice('sqlite:'.length) }, useNullAsDefault: true,
      pool: {
        // WAL: readers (Kamailio's db_sqlite, other instances, an operator's sqlite3) never wait
        // for our once-a-second writes, and a busy file makes us wait briefly instead of failing.
        afterCreate: (conn: { pragma(s: string): unknown }, done: (err: Error | null, conn: unknown) => void) => {
          try { conn.pragma('journal_mode = WAL'); conn.pragma('busy_timeout = 2000'); done(null, conn); } catch (e) { done(e as Error, conn); }
        },
      },
    };
  }
  if (/^postgres(ql)?:\/\//.test(dbUrl)) {
    return { client: 'pg', connection: { connectionString: dbUrl, connectionTimeoutMillis: 3000, statement_timeout: 5000 } as Knex.PgConnectionConfig, pool: { min: 0, max: 4 }, acquireConnectionTimeout: 5000 };
  }
  if (/^mysql:\/\//.test(dbUrl)) {
    return { client: 'mysql2', connection: { uri: dbUrl, connectTimeout: 3000 } as unknown as Knex.MySqlConnectionConfig, pool: { min: 0, max: 4 }, acquireConnectionTimeout: 5000 };
  }
  throw new Error(`unsupported database URL "${dbUrl}" (sqlite:PATH, postgres://…, mysql://…)`);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

export class Store {
  private db: Knex | null = null;
  private dbState: DbState = 'connecting';
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private backoffMs = 1000;
  private readonly records: CallRecord[] = [];
  private readonly recordingRows: RecordingRow[] = [];
  private readonly statements = new WeakMap<SqliteConnection, Map<string, SqliteStatement>>();
  private lastPurgeMs = 0;
  private readonly startedMs = Date.now();
  private readonly cacheFile: string;
  /** Column values at the last poll, to tell which one an operator changed. */
  private seen: { wanted: InstanceTarget['wanted']; kamDisabled: boolean | null } | null = null;
  /**
   * Kamailio's `disabled` as we left it in the previous run, read at registration (null: unknown,
   * our row is new). We keep it equal to "our reported state is not active", so the state column
   * we last wrote says what it was.
   */
  private lastKamDisabled: boolean | null = null;
  /** State writes, one at a time and in order; close() waits for them. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly cfg: StoreConfig,
    private readonly instance: Instance,
    private readonly liveCalls: () => number,
    private readonly log: Logger,
  ) {
    this.cacheFile = path.join(cfg.stateDir, 'instance-state.json');
  }

  get state(): DbState { return this.dbState; }

  /** Restores the last known wanted state from the local file; synchronous, before NG opens. */
  restoreLocal(): void {
    try {
      const saved = JSON.parse(readFileSync(this.cacheFile, 'utf8')) as { wanted?: InstanceTarget['wanted'] };
      if (saved.wanted === 'draining' || saved.wanted === 'disabled') this.instance.set(saved.wanted, 'local state file');
    } catch { /* first start, or unreadable: active */ }
  }

  saveLocal(): void {
    try {
      mkdirSync(this.cfg.stateDir, { recursive: true });
      const tmp = this.cacheFile + '.tmp';
      writeFileSync(tmp, JSON.stringify({ wanted: this.instance.wanted, savedMs: Date.now() }));
      renameSync(tmp, this.cacheFile);
    } catch (err) {
      this.log.warn({ err, file: this.cacheFile }, 'cannot save instance state');
    }
  }

  /** Starts the background loop and returns at once. */
  start(): void {
    this.instance.onChange(() => { this.saveLocal(); this.pushState(); });
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { void this.loop(); }, ms);
    this.timer.unref();
  }

  private setDbState(s: DbState, err?: unknown): void {
    if (s === this.dbState) return;
    if (s === 'up') this.log.info({ db: redact(this.cfg.dbUrl) }, 'database connected');
    else this.log.warn({ db: redact(this.cfg.dbUrl), err: err instanceof Error ? err.message : err }, 'database unavailable, retrying in the background');
    this.dbState = s;
  }

  private async loop(): Promise<void> {
    try {
      if (!this.db) {
        if (this.cfg.dbUrl.startsWith('sqlite:')) mkdirSync(path.dirname(this.cfg.dbUrl.slice(7)) || '.', { recursive: true });
        this.db = knexFactory(knexConfig(this.cfg.dbUrl));
        await withTimeout(this.db.raw('select 1'), 5000, 'database connect');
        await withTimeout(this.db.migrate.latest({ directory: MIGRATIONS, loadExtensions: ['.js'] }), 30_000, 'migrations');
        await this.register();
      }
      await withTimeout(this.poll(), 5000, 'database poll');
      this.setDbState('up');
      this.backoffMs = 1000;
      this.schedule(this.cfg.pollMs);
    } catch (err) {
      this.setDbState('down', err);
      const db = this.db;
      this.db = null;
      if (db) void db.destroy().catch(() => undefined);
      this.schedule(this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    }
  }

  /** Adds Kamailio's row for this instance (enabled, weight 1) and our own state row, if absent. */
  private async register(): Promise<void> {
    const db = this.db!;
    const row = await db('rtpengine').where({ url: this.cfg.instanceUrl }).first();
    if (!row) await db('rtpengine').insert({ setid: this.cfg.setid, url: this.cfg.instanceUrl, weight: 1, disabled: 0, stamp: new Date() });
    const mine = await db('rtprelay_instances').where({ url: this.cfg.instanceUrl }).first();
    this.lastKamDisabled = !row ? false : mine ? mine.state !== 'active' : null;
    if (!mine) {
      await db('rtprelay_instances').insert({
        url: this.cfg.instanceUrl, name: this.cfg.name, wanted: this.instance.wanted, state: this.instance.state,
        heartbeat_ms: Date.now(), version: this.cfg.version, calls: this.liveCalls(), started_ms: this.startedMs,
      });
    } else {
      await db('rtprelay_instances').where({ url: this.cfg.instanceUrl }).update({ name: this.cfg.name, version: this.cfg.version, started_ms: this.startedMs });
    }
    this.log.info({ url: this.cfg.instanceUrl }, 'instance registered');
  }

  /** Reads what the operator wants (SQL, CLI, another instance's API), writes back what we are. */
  private async poll(): Promise<void> {
    const db = this.db!;
    const [kam, mine] = await Promise.all([
      db('rtpengine').where({ url: this.cfg.instanceUrl }).first(),
      db('rtprelay_instances').where({ url: this.cfg.instanceUrl }).first(),
    ]);
    // Two places may say what is wanted: our column (SQL, CLI, API) and Kamailio's `disabled`
    // (set by tools that know only Kamailio's table). Whichever changed since the last poll wins.
    const ourWanted: InstanceTarget['wanted'] = mine?.wanted === 'draining' || mine?.wanted === 'disabled' ? mine.wanted : 'active';
    const kamDisabled = kam ? Number(kam.disabled) !== 0 : null;
    let wanted = this.instance.wanted;
    if (this.seen === null) {
      // First poll of this run: Kamailio's column wins if it changed while we were away (it no
      // longer says what we left there: disabled after a shutdown drain, whatever was wanted),
      // else our column does. Our row new: disabled there wins over an active wanted.
      const kamChanged = kamDisabled !== null && (this.lastKamDisabled === null ? kamDisabled && ourWanted === 'active' : kamDisabled !== this.lastKamDisabled);
      wanted = kamChanged ? (kamDisabled ? 'disabled' : 'active') : ourWanted;
    } else if (mine && ourWanted !== this.seen.wanted) wanted = ourWanted;
    else if (kamDisabled !== null && kamDisabled !== this.seen.kamDisabled) wanted = kamDisabled ? 'disabled' : 'active';
    this.seen = { wanted: ourWanted, kamDisabled };
    this.instance.set(wanted, 'database');
    this.instance.check();
    // The rows say what we want and are (after a restart, a push that failed, a change while the
    // database was away, or an operator enabling Kamailio's row while we shut down).
    if ((mine && ourWanted !== this.instance.wanted) || (kam && kamDisabled !== (this.instance.state !== 'active'))) {
      await this.serially(() => this.writeState(db));
    }
    await db('rtprelay_instances').where({ url: this.cfg.instanceUrl })
      .update({ state: this.instance.state, heartbeat_ms: Date.now(), calls: this.liveCalls() });
    await this.flushRecords();
    await this.flushRecordings();
    if (this.cfg.recordDays > 0 && Date.now() - this.lastPurgeMs > 3600_000) {
      this.lastPurgeMs = Date.now();
      await db('rtprelay_calls').where('ended_ms', '<', Date.now() - this.cfg.recordDays * 86400_000).del();
    }
  }

  /** Writes a change (HTTP/CLI/signal/database) to the database when it is up. */
  private pushState(): void {
    void this.serially(async () => {
      const db = this.db;
      if (!db || this.dbState !== 'up') return;
      try {
        await this.writeState(db);
      } catch (err) {
        this.log.debug({ err }, 'state push failed; the next poll retries');
      }
    });
  }

  private serially(fn: () => Promise<void>): Promise<void> {
    const p = this.writes.then(fn);
    this.writes = p.catch(() => undefined);
    return p;
  }

  /**
   * The operator's wish in our `wanted`, what we are in `state`, and Kamailio's `disabled` set
   * whenever that state is not active: Kamailio stops choosing an instance whose row is disabled
   * (after its next reload), including while it drains for a shutdown.
   */
  private async writeState(db: Knex): Promise<void> {
    const wanted = this.instance.wanted, state = this.instance.state, kamDisabled = state !== 'active';
    // `wanted` only when it differs from the column as last read or written: a state change alone
    // (the shutdown drain) never writes over an operator's SQL that came in meanwhile.
    const row = wanted === this.seen?.wanted ? { state } : { wanted, state };
    await db.transaction(async (trx) => {
      await trx('rtprelay_instances').where({ url: this.cfg.instanceUrl }).update(row);
      await trx('rtpengine').where({ url: this.cfg.instanceUrl }).update({ disabled: kamDisabled ? 1 : 0 });
    });
    this.seen = { wanted, kamDisabled };
  }

  record(r: CallRecord): void {
    if (this.records.length >= MAX_BUFFERED_RECORDS) this.records.shift(); // oldest go first while the database is away
    this.records.push(r);
  }

  private async flushRecords(): Promise<void> {
    while (this.records.length && this.db) {
      const batch = this.records.slice(0, 200);
      const rows = batch.map((r) => ({
        instance_url: this.cfg.instanceUrl, call_id: r.callId, from_tag: r.fromTag, to_tag: r.toTag,
        started_ms: r.startedMs, ended_ms: r.endedMs, duration_ms: r.endedMs - r.startedMs, reason: r.reason,
        a_packets: r.a.packets, a_bytes: r.a.bytes, a_lost: r.a.lost, a_jitter_ms: r.a.jitterMs, a_mos: r.a.mos,
        b_packets: r.b.packets, b_bytes: r.b.bytes, b_lost: r.b.lost, b_jitter_ms: r.b.jitterMs, b_mos: r.b.mos,
      }));
      if (this.cfg.dbUrl.startsWith('sqlite:')) await this.insertSqlite('rtprelay_calls', rows);
      else await this.db('rtprelay_calls').insert(rows);
      this.records.splice(0, batch.length);
      await yieldToLoop();
    }
  }

  /**
   * SQLite runs on the main thread: one prepared one-row statement, all rows in one transaction.
   * knex compiled (and SQLite prepared) a 200-row statement of 3600 placeholders per batch: ~20 µs
   * of main-thread CPU per call record, ~7 µs per NG command under ngload's call churn.
   */
  private async insertSqlite(table: string, rows: Record<string, string | number | null>[]): Promise<void> {
    const client = (this.db as unknown as { client: SqliteClient }).client;
    const conn = await client.acquireConnection();
    try {
      const cols = Object.keys(rows[0]!);
      const sql = `insert into \`${table}\` (${cols.map((c) => `\`${c}\``).join(', ')}) values (${cols.map(() => '?').join(', ')})`;
      let mine = this.statements.get(conn);
      if (!mine) { mine = new Map(); this.statements.set(conn, mine); }
      let stmt = mine.get(sql);
      if (!stmt) { stmt = conn.prepare(sql); mine.set(sql, stmt); }
      const st = stmt;
      conn.transaction(() => { for (const r of rows) st.run(cols.map((c) => r[c] ?? null)); })();
    } finally {
      await client.releaseConnection(conn);
    }
  }

  // --- Call recordings: rows buffered like call records, written in the background. ---------

  recordFiles(rows: RecordingRow[]): void {
    for (const r of rows) {
      if (this.recordingRows.length >= MAX_BUFFERED_RECORDS) this.recordingRows.shift();
      this.recordingRows.push(r);
    }
  }

  private async flushRecordings(): Promise<void> {
    while (this.recordingRows.length && this.db) {
      const batch = this.recordingRows.slice(0, 200);
      await this.db('rtprelay_recordings').insert(batch.map((r) => ({
        instance_url: this.cfg.instanceUrl, call_id: r.callId, path: r.path, kind: r.kind, tag: r.tag, bytes: r.bytes,
        started_ms: r.startedMs, ended_ms: r.endedMs, metadata: r.metadata, error: r.error === null ? null : r.error.slice(0, 255),
      })));
      this.recordingRows.splice(0, batch.length);
      await yieldToLoop();
    }
  }

  /** Recording files, newest first; `callId` narrows to one call. Rows not yet written are included. */
  async recordings(callId: string | null, limit = 200): Promise<Record<string, unknown>[]> {
    const db = this.requireDb();
    let q = db('rtprelay_recordings').orderBy('id', 'desc').limit(limit);
    if (callId !== null) q = q.where({ call_id: callId });
    const rows = (await q) as Record<string, unknown>[];
    const pending = this.recordingRows.filter((r) => callId === null || r.callId === callId).map((r) => ({
      id: null, instance_url: this.cfg.instanceUrl, call_id: r.callId, path: r.path, kind: r.kind, tag: r.tag, bytes: r.bytes,
      started_ms: r.startedMs, ended_ms: r.endedMs, metadata: r.metadata, error: r.error,
    }));
    return [...pending, ...rows].map((r) => ({ ...r, bytes: Number(r.bytes), started_ms: Number(r.started_ms), ended_ms: Number(r.ended_ms) }));
  }

  /** One recording file row by id (downloads check the path against it). */
  async recordingById(id: number): Promise<Record<string, unknown> | null> {
    const row = await this.requireDb()('rtprelay_recordings').where({ id }).first() as Record<string, unknown> | undefined;
    return row ?? null;
  }

  /** The instances table as operators see it (Kamailio's rows joined with ours). */
  async instances(): Promise<{ instances: Record<string, unknown>[] }> {
    const db = this.requireDb();
    const rows = await db('rtpengine').leftJoin('rtprelay_instances', 'rtpengine.url', 'rtprelay_instances.url')
      .select('rtpengine.id', 'rtpengine.setid', 'rtpengine.url', 'rtpengine.weight', 'rtpengine.disabled',
        'rtprelay_instances.name', 'rtprelay_instances.wanted', 'rtprelay_instances.state', 'rtprelay_instances.calls',
        'rtprelay_instances.heartbeat_ms', 'rtprelay_instances.version');
    return { instances: rows };
  }

  async addInstance(url: string, setid: number, weight: number): Promise<void> {
    const db = this.requireDb();
    const row = await db('rtpengine').where({ url, setid }).first();
    if (row) await db('rtpengine').where({ id: row.id }).update({ weight, disabled: 0 });
    else await db('rtpengine').insert({ url, setid, weight, disabled: 0, stamp: new Date() });
  }

  async removeInstance(url: string): Promise<number> {
    const db = this.requireDb();
    const n = await db('rtpengine').where({ url }).del();
    await db('rtprelay_instances').where({ url }).del();
    return n;
  }

  private requireDb(): Knex {
    if (!this.db || this.dbState !== 'up') throw new Error('database unavailable');
    return this.db;
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.db) {
      // The last state change (a shutdown drain: Kamailio's row disabled) reaches the database.
      try { await withTimeout(this.writes, 2000, 'final state write'); } catch { /* best effort at shutdown */ }
      try { await withTimeout(this.flushRecords(), 2000, 'final flush'); } catch { /* best effort at shutdown */ }
      try { await withTimeout(this.flushRecordings(), 2000, 'final flush'); } catch { /* best effort at shutdown */ }
      const db = this.db;
      this.db = null;
      // A database that accepts and never answers can hold destroy() for ever: give up after a second.
      await withTimeout(db.destroy(), 1000, 'database close').catch(() => undefined);
    }
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
