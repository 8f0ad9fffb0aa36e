// Starts the real daemon (dist/daemon/main.js) on 127.0.0.1 for integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { NgClient } from './ng-client.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const MAIN = path.join(ROOT, 'dist/daemon/main.js');

export interface Daemon {
  proc: ChildProcess;
  ngPort: number;
  tcpPort: number | null;
  /** The admin HTTP port, when started with --listen-http. */
  httpPort: number | null;
  stateDir: string;
  ng: NgClient;
  logs: Record<string, unknown>[];
  stderr: () => string;
  stop: () => Promise<number | null>;
}

let nextRange = 0;

/** A port range of its own for each daemon a test run starts, so parallel daemons never collide. */
export function portRange(size = 200): string[] {
  const base = 20000 + ((process.pid * 7 + nextRange++ * size) % 9000);
  const min = base - (base % 2);
  return [`--port-min=${min}`, `--port-max=${min + size - 1}`];
}

export async function startDaemon(t: TestContext | null, args: string[] = [], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Daemon> {
  const hasRange = args.some((a) => a.startsWith('--port-min'));
  // Each daemon gets its own state directory (local state file, embedded SQLite database).
  const stateDir = args.find((a) => a.startsWith('--state-dir='))?.slice('--state-dir='.length) ?? mkdtempSync(path.join(os.tmpdir(), 'rtprelay-test-'));
  if (!args.some((a) => a.startsWith('--state-dir='))) t?.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const full = [`--state-dir=${stateDir}`, '--config-file=none', '--listen-ng=127.0.0.1:0', '--log-stderr', '--log-level=7', '--delete-delay=0',
    '--interface=127.0.0.1', ...(hasRange ? [] : portRange()), ...args];
  const proc = spawn(process.execPath, [MAIN, ...full], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let err = '';
  const logs: Record<string, unknown>[] = [];
  const stop = (): Promise<number | null> => new Promise((resolve) => {
    // Already gone (an exit code, or killed by a signal): 'exit' will not fire again.
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    proc.once('exit', (code) => resolve(code));
    // SIGINT stops at once; SIGTERM would first drain the running calls (tests send it themselves).
    proc.kill('SIGINT');
    // The daemon ends itself within 5 s whatever hangs; this is the last resort.
    setTimeout(() => proc.kill('SIGKILL'), 7000).unref();
  });
  const ports = await new Promise<{ udp: number; tcp: number | null; http: number | null }>((resolve, reject) => {
    let udp: number | null = null, tcp: number | null = null, http: number | null = null;
    const wantTcp = full.some((a) => a.startsWith('--listen-tcp-ng'));
    const timer = setTimeout(() => reject(new Error('daemon did not start:\n' + err)), 10000);
    proc.stderr!.setEncoding('utf8');
    let partial = '';
    proc.stderr!.on('data', (chunk: string) => {
      err += chunk;
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        let j: Record<string, unknown>;
        try { j = JSON.parse(line); } catch { continue; }
        logs.push(j);
        if (j.msg === 'ng listening') {
          if (j.transport === 'udp') udp = j.port as number; else tcp = j.port as number;
        }
        if (j.msg === 'http listening') http = j.port as number;
        if (j.msg === 'rtprelay started' && udp !== null && (!wantTcp || tcp !== null)) { clearTimeout(timer); resolve({ udp, tcp, http }); }
      }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited with ${code}:\n${err}`)); });
  });
  const ng = new NgClient(ports.udp);
  const d: Daemon = { proc, ngPort: ports.udp, tcpPort: ports.tcp, httpPort: ports.http, stateDir, ng, logs, stderr: () => err, stop };
  t?.after(async () => { ng.close(); await stop(); });
  return d;
}

/** The names of a process's threads (/proc/PID/task/TID/comm), sorted; [] once it has gone. */
export function threadNames(pid: number): string[] {
  const names: string[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try { names.push(readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()); } catch { /* the thread ended */ }
    }
  } catch { /* the process ended */ }
  return names.sort();
}
