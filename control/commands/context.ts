// What a command handler gets: the session core and the daemon's counters, nothing of the transport.
import type { Logger } from 'pino';
import type { CallTable } from '../../daemon/session/call-table.js';
import type { NgDict } from '../codec.js';
import type { Params } from '../params.js';

export interface CommandCounter { count: number; errors: number; totalUs: number; maxUs: number }

export interface CommandStats {
  /** Per command name (unrecognised requests are not counted here): count, errors, latency (µs). */
  byCommand: Map<string, CommandCounter>;
  /** Per proxy address: all requests and error replies, and its recognised commands. */
  byProxy: Map<string, { count: number; errors: number; commands?: Map<string, CommandCounter> }>;
}

export interface PortUsage {
  address: string;
  /** Free and total RTP/RTCP pairs. */
  free: number;
  total: number;
  /** Interface name and range, when the plane reports them. */
  name?: string;
  min?: number;
  max?: number;
}

export interface CommandContext {
  table: CallTable;
  log: Logger;
  stats: CommandStats;
  startedMs: number;
  nowMs(): number;
  ports(): PortUsage[];
  /** Per-command latency observer (metrics histograms), if any. */
  observe?: (command: string, seconds: number) => void;
}

export type CommandHandler = (p: Params, ctx: CommandContext) => Promise<NgDict> | NgDict;
