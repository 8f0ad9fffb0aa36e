// `query`: one call's participants, media, streams and counters.
import { queryOptions } from '../params.js';
import type { CommandHandler } from './context.js';
import { formatCall } from './format.js';

export const query: CommandHandler = (p, ctx) => ({ ...formatCall(ctx.table.query(queryOptions(p))), result: 'ok' });
