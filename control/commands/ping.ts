// `ping`: liveness.
import type { CommandHandler } from './context.js';

export const ping: CommandHandler = () => ({ result: 'pong' });
