// This instance's service state: active, draining (no new calls, running calls go on), drained
// (draining and no call left), disabled (no new calls). The call table is told whether to accept
// new calls; the state itself is plain data so that the store can persist and share it.
import type { Logger } from 'pino';

export type InstanceStateName = 'active' | 'draining' | 'drained' | 'disabled';

export interface InstanceTarget {
  /** What the operator asked for; `drained` is reached from `draining` by itself. */
  wanted: 'active' | 'draining' | 'disabled';
}

export class Instance {
  private current: InstanceStateName = 'active';
  private readonly listeners: ((s: InstanceStateName) => void)[] = [];

  constructor(
    private readonly table: { acceptingNewCalls: boolean; liveCalls(): number },
    private readonly log: Logger,
  ) {}

  get state(): InstanceStateName { return this.current; }

  get wanted(): InstanceTarget['wanted'] {
    return this.current === 'drained' ? 'draining' : this.current;
  }

  onChange(l: (s: InstanceStateName) => void): void { this.listeners.push(l); }

  /** Operator's request (CLI, HTTP, database row, SIGTERM). Idempotent. */
  set(wanted: InstanceTarget['wanted'], source: string): void {
    if (wanted === this.wanted) return;
    this.table.acceptingNewCalls = wanted === 'active';
    this.go(wanted, source);
    this.check();
  }

  /** Called after calls end (and once a second): draining → drained when the last call is gone. */
  check(): void {
    if (this.current === 'draining' && this.table.liveCalls() === 0) this.go('drained', 'last call ended');
  }

  private go(s: InstanceStateName, source: string): void {
    if (s === this.current) return;
    this.log.info({ from: this.current, to: s, source }, 'instance state changed');
    this.current = s;
    for (const l of this.listeners) l(s);
  }
}
