// The root logger. Modules take a child with their subsystem name; nothing logs per packet.
import pino, { type Logger } from 'pino';

export function createLogger(cfg: { level: string; stderr: boolean }): Logger {
  return pino(
    { level: cfg.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: cfg.stderr ? 2 : 1, sync: false }),
  );
}
