// Small helpers shared by the tests: free loopback ports, and polling for a condition.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** A UDP port on 127.0.0.1 that was free a moment ago (the kernel's choice). */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/**
 * Polls `cond` every 20 ms until it holds; a condition that throws counts as false. For state
 * another process changes (a database row, a daemon's reply), where no event can be awaited.
 */
export async function until(cond: () => boolean | Promise<boolean>, what: string | (() => string), ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    let ok = false;
    try { ok = await cond(); } catch { ok = false; }
    if (ok) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * UDP ports in [min, max] bound on 127.0.0.1 by anyone, from the kernel's table (/proc/net/udp):
 * probing by binding them would race a socket thread's own binds.
 */
export function boundUdpPorts(min: number, max: number): number[] {
  return [...udpInodes(min, max).keys()].sort((a, b) => a - b);
}

/** The kernel's socket inode of each UDP port in [min, max] bound on 127.0.0.1 (/proc/net/udp): the same inode is the same socket. */
export function udpInodes(min: number, max: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [ip, port] = f[1]!.split(':');
    const n = parseInt(port!, 16);
    if (ip === '0100007F' && n >= min && n <= max) out.set(n, f[9]!);
  }
  return out;
}
