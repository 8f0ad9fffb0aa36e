// A network namespace of the test's own, joined to this host by a veth pair with private
// addresses the test chose (10.213.N.1/30 here, 10.213.N.2/30 inside). A process started in it
// (`ip netns exec NAME ...`) has loopback and the veth only, so what it offers as its address is
// the namespace's: traffic towards it stays on the veth. Needs root (CAP_NET_ADMIN) and iproute2.
import type { TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { findBinary } from './sip-phones.js';

export interface Netns {
  name: string;
  /** The host side of the veth. */
  hostAddr: string;
  /** The namespace side: its only non-loopback address. */
  nsAddr: string;
  /** argv prefix that runs a command inside the namespace. */
  exec: string[];
}

let seq = 0;

function ip(bin: string, args: string[]): void {
  execFileSync(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
}

/** Tries to run `args` (ignores a failure); for teardown and optional settings. */
function ipQuiet(bin: string, args: string[]): void {
  try { ip(bin, args); } catch { /* gone already, or not supported */ }
}

function inUse(prefix: string): boolean {
  return Object.values(os.networkInterfaces()).flat().some((i) => i !== undefined && i.address.startsWith(prefix));
}

/**
 * Creates the namespace and veth pair; removed in `t.after` (processes left inside are killed by
 * PID first). Returns the reason as a string when it cannot be created (no privileges, no iproute2).
 */
export function createNetns(t: TestContext): Netns | string {
  const bin = findBinary('ip');
  if (!bin) return 'iproute2 (ip) not installed';
  const k = seq++;
  const name = `rtprelay-t${process.pid}-${k}`;
  // veth names: at most 15 characters.
  const tag = `${process.pid % 100000}${String.fromCharCode(97 + (k % 26))}`;
  const hostIf = `rtv${tag}h`, nsIf = `rtv${tag}n`;
  let third = (process.pid + 37 * k) % 256;
  for (let i = 0; i < 256 && inUse(`10.213.${third}.`); i++) third = (third + 1) % 256;
  const hostAddr = `10.213.${third}.1`, nsAddr = `10.213.${third}.2`;

  try { ip(bin, ['netns', 'add', name]); } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return `cannot create a network namespace (ip netns add): ${(err.stderr?.toString() || err.message).trim()}`;
  }
  const pidsInside = (): number[] => {
    try {
      return execFileSync(bin, ['netns', 'pids', name], { timeout: 5000, encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
    } catch { return []; }
  };
  t.after(async () => {
    // Whatever runs inside (our phone: after hooks run in registration order, so this comes before
    // the SIP setup's own stop): by PID, SIGTERM (it un-registers), then SIGKILL after 2 s.
    const signal = (sig: NodeJS.Signals): void => {
      for (const pid of pidsInside()) { try { process.kill(pid, sig); } catch { /* gone */ } }
    };
    signal('SIGTERM');
    for (let i = 0; i < 20 && pidsInside().length; i++) await new Promise((r) => setTimeout(r, 100));
    signal('SIGKILL');
    ipQuiet(bin, ['netns', 'del', name]);
    // Deleting the namespace removes its end of the pair and so ours; if a process kept it alive, do it here.
    ipQuiet(bin, ['link', 'del', hostIf]);
  });
  try {
    // No IPv6 inside (no link-local addresses for the phone to offer as candidates).
    ipQuiet(bin, ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    ip(bin, ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', name]);
    ipQuiet(bin, ['link', 'set', hostIf, 'addrgenmode', 'none']);
    ip(bin, ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    ip(bin, ['link', 'set', hostIf, 'up']);
    ip(bin, ['-n', name, 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf]);
    ip(bin, ['-n', name, 'link', 'set', nsIf, 'up']);
    ip(bin, ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return `cannot set up the veth pair for the network namespace: ${(err.stderr?.toString() || err.message).trim()}`;
  }
  return { name, hostAddr, nsAddr, exec: [bin, 'netns', 'exec', name] };
}
