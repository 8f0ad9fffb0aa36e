// This instance's service state: active, draining (no new calls, running calls go on), drained
// (draining and no call left), disabled (no new calls). The call table is told whether to accept
// new calls; the state itself is plain data so that the store can persist and share it.
//
// Two things are kept apart: what the operator wants (`wanted`: CLI, HTTP, database, persisted
// and restored at the next start) and the shutdown drain (SIGTERM), which makes this run drain
// but is not a wish for the next run: an ordinary restart comes back as the operator wanted.
import type { Logger } from 'pino';

export type InstanceStateName = 'active' | 'draining' | 'drained' | 'disabled';

export interface InstanceTarget {
  /** What the operator asked for; `drained` is reached from `draining` by itself. */
  wanted: 'active' | 'draining' | 'disabled';
}

export class Instance {
  private current: InstanceStateName = 'active';
  private wish: InstanceTarget['wanted'] = 'active';
  private stopping = false;
  private readonly listeners: ((s: InstanceStateName) => void)[] = [];

  constructor(
    private readonly table: { acceptingNewCalls: boolean; liveCalls(): number },
    private readonly log: Logger,
  ) {}

  get state(): InstanceStateName { return this.current; }

  /** The operator's wish; a shutdown drain does not change it. */
  get wanted(): InstanceTarget['wanted'] { return this.wish; }

  /** True once the shutdown drain has begun. */
  get shuttingDown(): boolean { return this.stopping; }

  /** Called on every change of the state or of the wish. */
  onChange(l: (s: InstanceStateName) => void): void { this.listeners.push(l); }

  /** Operator's request (CLI, HTTP, database row, local state file). Idempotent. */
  set(wanted: InstanceTarget['wanted'], source: string): void {
    if (wanted === this.wish) return;
    this.wish = wanted;
    if (!this.apply(source)) {
      // Shutting down: the state stays draining, but the wish is kept (and saved) for the next run.
      this.log.info({ wanted, state: this.current, source }, 'instance wanted state changed');
      this.notify();
    }
  }

  /**
   * SIGTERM: no new calls for the rest of this run, shown as draining (or drained), whatever the
   * operator wants; an instance the operator disabled stays disabled. `wanted` is left alone.
   */
  shutDown(source: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.apply(source);
  }

  /** Called after calls end (and once a second): draining → drained when the last call is gone. */
  check(): void {
    if (this.current === 'draining' && this.table.liveCalls() === 0) this.go('drained', 'last call ended');
  }

  /** Brings the state in line with the wish and the shutdown; false if the state stayed as it was. */
  private apply(source: string): boolean {
    const target = this.stopping && this.wish === 'active' ? 'draining' : this.wish;
    this.table.acceptingNewCalls = target === 'active';
    const now = this.current === 'drained' ? 'draining' : this.current;
    if (target === now) return false;
    this.go(target, source);
    this.check();
    return true;
  }

  private go(s: InstanceStateName, source: string): void {
    if (s === this.current) return;
    this.log.info({ from: this.current, to: s, source }, 'instance state changed');
    this.current = s;
    this.notify();
  }

  private notify(): void {
    for (const l of this.listeners) l(this.current);
  }
}
