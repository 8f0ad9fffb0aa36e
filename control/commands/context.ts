// What a command handler gets: the session core and the daemon's counters, nothing of the transport.
import type { Logger } from 'pino';
import type { CallTable } from '../../daemon/session/call-table.js';
import type { NgDict } from '../codec.js';
import type { Params } from '../params.js';

export interface CommandStats {
  /** Per command: count, errors, total and max latency (µs). */
  byCommand: Map<string, { count: number; errors: number; totalUs: number; maxUs: number }>;
  /** Per proxy address: commands and errors. */
  byProxy: Map<string, { count: number; errors: number }>;
}

export interface CommandContext {
  table: CallTable;
  log: Logger;
  stats: CommandStats;
  startedMs: number;
  nowMs(): number;
  ports(): { address: string; free: number; total: number }[];
}

export type CommandHandler = (p: Params, ctx: CommandContext) => Promise<NgDict> | NgDict;
