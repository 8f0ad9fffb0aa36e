// `delete`: ends a call, one branch of it, or (with a delay) schedules its end; while a re-offer
// is pending it rolls that back instead (see README, Re-INVITE, forking and early media).
import { NgError } from '../errors.js';
import { deleteOptions } from '../params.js';
import type { NgDict } from '../codec.js';
import { calls, type CommandHandler } from './context.js';
import { formatCall } from './format.js';

const NOT_FOUND = "Call-ID not found or tags didn't match";
/** rtprelay: a delete that undid a pending re-offer (its failure) rather than ending the call. */
const ROLLED_BACK = 'Pending re-offer rolled back to the committed media; call kept';
const NOTHING_PENDING = 'No pending re-offer to roll back; call kept';

export const del: CommandHandler = async (p, ctx): Promise<NgDict> => {
  const opts = deleteOptions(p);
  // Taken first: an immediate delete forgets the call.
  const files = calls(ctx).recordingFiles(opts.callId);
  const r = await calls(ctx).delete(opts);
  if (!r.found) {
    if (opts.fatal) throw new NgError(NOT_FOUND);
    return { warning: NOT_FOUND, result: 'ok' };
  }
  // A recorded call's files (the pcap paths), as in rtpengine's offer/answer replies; with only a
  // call-id too, so the proxy learns them whichever delete it sends.
  const reply: NgDict = {};
  if (files.length) reply.recordings = files;
  if (r.snapshot) formatCall(r.snapshot, reply);
  if (r.rolledBack) reply.warning = ROLLED_BACK;
  else if (r.nothingPending) reply.warning = NOTHING_PENDING;
  reply.result = 'ok';
  return reply;
};
