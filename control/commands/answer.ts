// `answer`: the answerer's SDP in, the SDP for the offerer out.
import { offerAnswerOptions } from '../params.js';
import { calls, type CommandHandler } from './context.js';

export const answer: CommandHandler = async (p, ctx) => {
  const r = await calls(ctx).answer(offerAnswerOptions(p, 'answer'));
  return { sdp: p.bytesOut('sdp', r.sdp), result: 'ok' };
};
