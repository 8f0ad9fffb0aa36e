// `start recording`, `stop recording`, `pause recording` (the last one is upstream master's; 10.5
// has only the first two). rtpengine 10.5 records the whole call whatever participant is named,
// and replies with just `result`.
import { recordingOptions } from '../params.js';
import { calls, type CommandHandler } from './context.js';

export const startRecording: CommandHandler = async (p, ctx) => {
  await calls(ctx).startRecording(recordingOptions(p));
  return { result: 'ok' };
};

export const stopRecording: CommandHandler = async (p, ctx) => {
  await calls(ctx).stopRecording(recordingOptions(p));
  return { result: 'ok' };
};

export const pauseRecording: CommandHandler = async (p, ctx) => {
  await calls(ctx).pauseRecording(recordingOptions(p));
  return { result: 'ok' };
};
