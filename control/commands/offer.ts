// `offer`: the caller's (or re-inviting party's) SDP in, the SDP for the other side out.
import { offerAnswerOptions } from '../params.js';
import { calls, type CommandHandler } from './context.js';

export const offer: CommandHandler = async (p, ctx) => {
  const r = await calls(ctx).offer(offerAnswerOptions(p, 'offer'));
  return { sdp: p.bytesOut('sdp', r.sdp), result: 'ok' };
};
