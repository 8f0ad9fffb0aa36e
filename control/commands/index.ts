// The command table: NG command names (case-sensitive, as in rtpengine) onto handlers.
import { answer } from './answer.js';
import { calls, type CommandHandler } from './context.js';
import { del } from './delete.js';
import { list } from './list.js';
import { offer } from './offer.js';
import { ping } from './ping.js';
import { query } from './query.js';
import { pauseRecording, startRecording, stopRecording } from './recording.js';
import { statistics } from './statistics.js';

/**
 * rtpengine 10.5 puts `recordings` (the pcap paths) first in the offer/answer reply of a recorded
 * call (captured from 10.5.3.5 with --recording-method=pcap).
 */
function withRecordings(h: CommandHandler): CommandHandler {
  return async (p, ctx) => {
    const reply = await h(p, ctx);
    const callId = p.str('call-id');
    const files = callId === null ? [] : calls(ctx).recordingFiles(callId);
    return files.length && reply.result === 'ok' ? { recordings: files, ...reply } : reply;
  };
}

export const COMMANDS: ReadonlyMap<string, CommandHandler> = new Map([
  ['ping', ping], ['offer', withRecordings(offer)], ['answer', withRecordings(answer)], ['delete', del], ['query', query], ['list', list],
  ['statistics', statistics],
  ['start recording', startRecording], ['stop recording', stopRecording], ['pause recording', pauseRecording],
]);
