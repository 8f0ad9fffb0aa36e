// `query`: one call's participants, media, streams and counters.
import { SessionError } from '../../daemon/session/errors.js';
import { queryOptions } from '../params.js';
import { calls, type CommandHandler } from './context.js';
import { formatCall } from './format.js';

export const query: CommandHandler = (p, ctx) => {
  const opts = queryOptions(p);
  try {
    return { ...formatCall(calls(ctx).query(opts)), result: 'ok' };
  } catch (err) {
    // rtpengine answers a tag it does not know with the call's figures and no participants.
    if (!(err instanceof SessionError && err.code === 'NO_TAG')) throw err;
    return { ...formatCall(calls(ctx).query({ ...opts, fromTag: null, toTag: null })), tags: {}, result: 'ok' };
  }
};
