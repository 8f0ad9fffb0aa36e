// `list`: call-ids, at most `limit` (default 32).
import { NgError } from '../errors.js';
import type { CommandHandler } from './context.js';

export const list: CommandHandler = async (p, ctx) => {
  const limit = p.int('limit') ?? 32;
  if (limit < 0) throw new NgError('invalid limit, must be >= 0');
  return { calls: await ctx.core.list(limit), result: 'ok' };
};
