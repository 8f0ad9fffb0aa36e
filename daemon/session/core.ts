// What the daemon's outer parts (operations, admin, the NG commands that are not about one call)
// see of the session core, whether it runs in this thread (one CallTable) or is spread over call
// threads (daemon/call-threads.ts, each thread a CallTable of its own). Calls are reached by
// call-id; figures for the whole instance come from `totals()`/`mediaTotals()`/`ports()`, which a
// threaded core keeps from the threads' last reports and `refresh()` brings up to date.
import type { CallSnapshot, DeleteResult, RecordingDone, TableTotals } from './call-table.js';
import type { CallTable } from './call-table.js';
import type { DeleteOptions, QueryOptions } from './model.js';
import type { PortFigures } from '../../media/plane.js';

export interface MediaTotals {
  rtp: { packets: number; bytes: number; errors: number };
  rtcp: { packets: number; bytes: number; errors: number };
  streams: number;
}

/** An address's port pairs (and parked sockets, media/plane.ts) for the whole instance. */
export interface PortUsage extends PortFigures {
  /** Interface name and range, when the plane reports them. */
  name?: string;
  min?: number;
  max?: number;
}

/** A finished call, as the database keeps it: direction a is what the first participant sent, b what the second sent. */
export interface CallRecord {
  callId: string; fromTag: string; toTag: string; startedMs: number; endedMs: number; reason: string;
  a: DirectionStats; b: DirectionStats;
}
export interface DirectionStats { packets: number; bytes: number; lost: number; jitterMs: number; mos: number | null }

export interface SessionCore {
  /** When false, new calls are refused (drain); existing ones go on. */
  acceptingNewCalls: boolean;
  /** Recordings stopped by a file error. */
  readonly recordingFailures: number;
  totals(): TableTotals;
  mediaTotals(): MediaTotals;
  ports(): PortUsage[];
  /**
   * False while the figures may miss calls just started (call threads not yet told of a drain):
   * nothing may conclude from them that no call is left. Absent: always settled.
   */
  settled?(): boolean;
  /** Makes the three above current (a threaded core asks its threads; a local one has nothing to do). */
  refresh(): Promise<void>;
  list(limit: number): Promise<string[]>;
  query(opts: QueryOptions): Promise<CallSnapshot>;
  delete(opts: DeleteOptions): Promise<DeleteResult>;
  onCallRecord(listener: (r: CallRecord) => void): void;
  onRecordingDone(listener: (r: RecordingDone) => void): void;
  /** Ends every call at once (shutdown). */
  destroyAll(reason: string): Promise<void>;
}

/** One call's record from its last snapshot. */
export function callRecord(c: CallSnapshot, reason: string, endedMs: number): CallRecord {
  const dir = (i: number): DirectionStats => {
    const p = c.participants[i];
    let packets = 0, bytes = 0, lost = 0, jitterMs = 0, mos: number | null = null;
    for (const m of p?.medias ?? []) for (const s of m.streams) if (s.kind === 'rtp') {
      packets += s.stats.packets; bytes += s.stats.bytes;
      // Quality of what this participant sent (RFC 3550 at the relay); the worst stream's MOS.
      const q = s.quality;
      if (q) { lost += q.lost; jitterMs = Math.max(jitterMs, q.jitterMs); if (q.mos !== null) mos = mos === null ? q.mos : Math.min(mos, q.mos); }
    }
    return { packets, bytes, lost, jitterMs, mos };
  };
  return {
    callId: c.callId, fromTag: c.participants[0]?.tag ?? '', toTag: c.participants[1]?.tag ?? '',
    startedMs: c.createdMs, endedMs, reason, a: dir(0), b: dir(1),
  };
}

/** The session core in this thread: one CallTable and its media plane's port pool. */
export class LocalCore implements SessionCore {
  constructor(readonly table: CallTable, private readonly portUsage: () => PortUsage[], private readonly nowMs: () => number = Date.now) {}

  get acceptingNewCalls(): boolean { return this.table.acceptingNewCalls; }
  set acceptingNewCalls(v: boolean) { this.table.acceptingNewCalls = v; }
  get recordingFailures(): number { return this.table.recordingFailures; }
  totals(): TableTotals { return this.table.totals(); }
  mediaTotals(): MediaTotals { return this.table.mediaTotals(); }
  ports(): PortUsage[] { return this.portUsage(); }
  async refresh(): Promise<void> { /* always current */ }
  async list(limit: number): Promise<string[]> { return this.table.list(limit); }
  async query(opts: QueryOptions): Promise<CallSnapshot> { return this.table.query(opts); }
  delete(opts: DeleteOptions): Promise<DeleteResult> { return this.table.delete(opts); }
  onCallRecord(listener: (r: CallRecord) => void): void {
    this.table.onCallEnded((snap, reason) => listener(callRecord(snap, reason, this.nowMs())));
  }
  onRecordingDone(listener: (r: RecordingDone) => void): void { this.table.onRecordingDone(listener); }
  async destroyAll(reason: string): Promise<void> { this.table.destroyAll(reason); }
}
