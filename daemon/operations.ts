// Operations around the relay: the instance state (drain/enable/disable), the database in the
// background, call records, the packets-per-second history and the graceful shutdown. main.ts
// builds the admin surface (admin/) on top of it: daemon/ does not import admin/.
// main.ts starts it after the control sockets are open, so none of this can delay NG.
import path from 'node:path';
import type { Logger } from 'pino';
import { Instance } from './instance.js';
import type { SessionCore } from './session/core.js';
import { Store } from './store.js';

export interface OperationsConfig {
  /** `sqlite:PATH`, `postgres://…`, `mysql://…`, or `none`; default: SQLite under the state dir. */
  dbUrl: string | null;
  instanceUrl: string;
  instanceName: string;
  setid: number;
  stateDir: string;
  shutdownTimeoutS: number;
  recordDays: number;
  kamailioRpcUrl: string | null;
  version: string;
}

export interface OperationsDeps {
  table: SessionCore;
  log: Logger;
}

export class Operations {
  readonly instance: Instance;
  readonly store: Store | null;
  /** Packets per second over the last five minutes (the dashboard's chart). */
  readonly history: { t: number; pps: number }[] = [];
  private lastPackets = -1;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly cfg: OperationsConfig, private readonly deps: OperationsDeps) {
    const table = deps.table;
    const liveCalls = (): number => { const t = table.totals(); return t.current - t.deleting; };
    const callsLeft = (): number => this.callsLeft();
    const instance: Instance = this.instance = new Instance({
      get acceptingNewCalls() { return table.acceptingNewCalls; },
      set acceptingNewCalls(v: boolean) {
        table.acceptingNewCalls = v;
        // Call threads: drained can be told once they all have it (their replies come in order).
        if (table.settled?.() === false) void table.refresh().then(() => instance.check());
      },
      liveCalls: callsLeft,
    }, deps.log.child({ sub: 'instance' }));
    const dbUrl = cfg.dbUrl ?? `sqlite:${path.join(cfg.stateDir, 'rtprelay.sqlite')}`;
    this.store = dbUrl === 'none' ? null : new Store({
      dbUrl, instanceUrl: cfg.instanceUrl, name: cfg.instanceName, setid: cfg.setid, version: cfg.version,
      stateDir: cfg.stateDir, pollMs: 1000, recordDays: cfg.recordDays,
    }, this.instance, liveCalls, deps.log.child({ sub: 'store' }));
    table.onCallRecord((r) => this.store?.record(r));
    table.onRecordingDone((r) => this.store?.recordFiles(r.files.map((f) => ({
      callId: r.callId, path: f.path, kind: f.kind, tag: f.tag ?? null, bytes: f.bytes, startedMs: r.startedMs, endedMs: r.endedMs,
      metadata: r.metadata, error: r.error,
    }))));
    // Once a second: drained yet? and one point of the packets-per-second history (5 minutes).
    this.timer = setInterval(() => {
      this.instance.check();
      const total = table.mediaTotals().rtp.packets;
      if (this.lastPackets >= 0) {
        this.history.push({ t: Date.now(), pps: Math.max(0, total - this.lastPackets) });
        if (this.history.length > 300) this.history.shift();
      }
      this.lastPackets = total;
    }, 1000);
    this.timer.unref();
  }

  /** Restores the local state and starts the background work; returns at once. */
  start(): void {
    this.store?.restoreLocal();
    this.store?.start();
  }

  /** Kamailio's JSON-RPC (jsonrpcs module over HTTP): re-read the rtpengine table. */
  async reloadKamailio(): Promise<boolean> {
    if (!this.cfg.kamailioRpcUrl) return false;
    try {
      const r = await fetch(this.cfg.kamailioRpcUrl, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', method: 'rtpengine.reload', id: 1 }), signal: AbortSignal.timeout(3000),
      });
      const body = await r.json() as { error?: unknown };
      if (!r.ok || body.error) throw new Error(JSON.stringify(body.error ?? r.status));
      return true;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'kamailio rtpengine.reload failed');
      return false;
    }
  }

  /**
   * SIGTERM: drain, wait for the running calls to end (or the shutdown timeout), then resolve.
   * `abort` resolves it early (a second signal). The drain is this run's only: what the operator
   * wants (saved for the next start) does not change, so a restart comes back active unless
   * draining or disabled was asked for.
   */
  async drainForShutdown(abort: Promise<void>): Promise<'drained' | 'timeout' | 'aborted'> {
    this.instance.shutDown('shutdown');
    const deadline = Date.now() + this.cfg.shutdownTimeoutS * 1000;
    let aborted = false;
    void abort.then(() => { aborted = true; });
    while (!aborted && this.callsLeft() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    this.instance.check(); // drained now, not at the next once-a-second check: the database's last word
    return aborted ? 'aborted' : this.callsLeft() === 0 ? 'drained' : 'timeout';
  }

  /** Live calls; unsettled figures (call threads not yet told of a drain) count as calls left. */
  private callsLeft(): number {
    const table = this.deps.table;
    if (table.settled?.() === false) return Infinity;
    const t = table.totals();
    return t.current - t.deleting;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.store?.close();
  }
}

export { callRecord } from './session/core.js';
