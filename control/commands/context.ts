// What a command handler gets: the session core and the daemon's counters, nothing of the transport.
import type { Logger } from 'pino';
import type { CallTable } from '../../daemon/session/call-table.js';
import type { PortUsage, SessionCore } from '../../daemon/session/core.js';
import type { NgDict } from '../codec.js';
import type { Params } from '../params.js';

export interface CommandCounter { count: number; errors: number; totalUs: number; maxUs: number }

export interface CommandStats {
  /** Per command name (unrecognised requests are not counted here): count, errors, latency (µs). */
  byCommand: Map<string, CommandCounter>;
  /** Per proxy address: all requests and error replies, and its recognised commands. */
  byProxy: Map<string, { count: number; errors: number; commands?: Map<string, CommandCounter> }>;
}

export type { PortUsage };

export interface CommandContext {
  /**
   * The calls of this thread, for the commands about one call. Null in the main thread when call
   * threads hold the calls: those commands are routed to the call's thread and never run there.
   */
  table: CallTable | null;
  /** The whole instance's session core (list, statistics). */
  core: SessionCore;
  log: Logger;
  stats: CommandStats;
  startedMs: number;
  nowMs(): number;
  ports(): PortUsage[];
  /** Per-command latency observer (metrics histograms), if any. */
  observe?: (command: string, seconds: number) => void;
}

export type CommandHandler = (p: Params, ctx: CommandContext) => Promise<NgDict> | NgDict;

/** The call table of a command about one call (see CommandContext.table). */
export function calls(ctx: CommandContext): CallTable {
  if (ctx.table === null) throw new Error('a call command reached a thread without calls');
  return ctx.table;
}
