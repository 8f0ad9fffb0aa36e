// `delete`: ends a call, one branch of it, or (with a delay) schedules its end.
import { NgError } from '../errors.js';
import { deleteOptions } from '../params.js';
import type { NgDict } from '../codec.js';
import type { CommandHandler } from './context.js';
import { formatCall } from './format.js';

const NOT_FOUND = "Call-ID not found or tags didn't match";

export const del: CommandHandler = async (p, ctx): Promise<NgDict> => {
  const opts = deleteOptions(p);
  const r = await ctx.table.delete(opts);
  if (!r.found) {
    if (opts.fatal) throw new NgError(NOT_FOUND);
    return { warning: NOT_FOUND, result: 'ok' };
  }
  return r.snapshot ? { ...formatCall(r.snapshot), result: 'ok' } : { result: 'ok' };
};
