// Loads rtprelay's native addon (media/native: batched UDP I/O, SRTP primitives, giving pages back) once per
// thread; null when it was not built (no compiler at install time, another OS), in which case
// media/udp.ts and media/srtp/native.ts fall back to node:dgram and node:crypto. Imports nothing of ours.
import { createRequire } from 'node:module';

let addon: Record<string, unknown> | null | undefined;

export function nativeAddon(): Record<string, unknown> | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') return null;
  const require = createRequire(import.meta.url);
  // dist/media/native-addon.js and media/native-addon.ts: the project root is two or one level up.
  for (const p of ['../../media/native/build/Release/rtprelay_native.node', '../media/native/build/Release/rtprelay_native.node']) {
    try { addon = require(p) as Record<string, unknown>; break; } catch { /* next */ }
  }
  return addon;
}

/**
 * Names the calling thread, and the addon's socket thread that serves it "<name>-io", as `top -H`,
 * `ps -L` and /proc/PID/task/TID/comm show them (15 bytes at most). Nothing without the addon.
 */
export function nameThread(name: string): void {
  const f = nativeAddon()?.threadName;
  if (typeof f === 'function') (f as (n: string) => void)(name);
}

/**
 * Gives the whole pages inside `buf` back to the kernel (they read as zeros when touched again):
 * the bytes released, or null without the addon (the memory then stays resident until freed).
 */
export function releasePages(buf: Buffer): number | null {
  const f = nativeAddon()?.releasePages;
  return typeof f === 'function' ? (f as (b: Buffer) => number)(buf) : null;
}
