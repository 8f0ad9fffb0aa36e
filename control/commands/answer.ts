// `answer`: the answerer's SDP in, the SDP for the offerer out.
import { offerAnswerOptions } from '../params.js';
import type { CommandHandler } from './context.js';

export const answer: CommandHandler = async (p, ctx) => {
  const r = await ctx.table.answer(offerAnswerOptions(p, 'answer'));
  return { sdp: p.bytesOut('sdp', r.sdp), result: 'ok' };
};
