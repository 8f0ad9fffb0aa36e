// The command table: NG command names (case-sensitive, as in rtpengine) onto handlers.
import { answer } from './answer.js';
import type { CommandHandler } from './context.js';
import { del } from './delete.js';
import { list } from './list.js';
import { offer } from './offer.js';
import { ping } from './ping.js';
import { query } from './query.js';
import { statistics } from './statistics.js';

export const COMMANDS: ReadonlyMap<string, CommandHandler> = new Map([
  ['ping', ping], ['offer', offer], ['answer', answer], ['delete', del], ['query', query], ['list', list],
  ['statistics', statistics],
]);
