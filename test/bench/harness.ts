// Shared by bench.ts and soak.ts: build the C load tools, start rtprelay or rtpengine, read a
// process's RSS / open files / CPU, run a tool and collect its JSON lines. Loopback only.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/daemon.js';
import { NgClient } from '../support/ng-client.js';

export const BENCH_DIR = path.resolve(ROOT, '../shared/bench');
export const TOOLS_DIR = process.env.RTPRELAY_BENCH_BUILD ?? path.join(os.tmpdir(), 'rtprelay-benchbuild');

/** Builds ngload/rtpblast/udpfwd into a temp dir (never into ../shared) when missing. */
export function buildTools(): { ngload: string; rtpblast: string } {
  const ngload = path.join(TOOLS_DIR, 'ngload'), rtpblast = path.join(TOOLS_DIR, 'rtpblast');
  if (!existsSync(ngload) || !existsSync(rtpblast)) {
    process.stdout.write(`building the load tools: make -C ${BENCH_DIR} BUILD=${TOOLS_DIR}\n`);
    execFileSync('make', ['-C', BENCH_DIR, `BUILD=${TOOLS_DIR}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return { ngload, rtpblast };
}

/**
 * An rtpblast that takes `--srtp` (built with libsrtp2), or null with the reason. The plain build
 * in TOOLS_DIR is used when it has SRTP; otherwise, when pkg-config finds libsrtp2, one is built
 * into TOOLS_DIR-srtp (a build of its own, so a bench running from TOOLS_DIR is not disturbed).
 */
export function buildSrtpBlast(): { rtpblast: string } | { rtpblast: null; why: string } {
  const withSrtp = (bin: string): boolean => existsSync(bin) && !readFileSync(bin).includes('built without libsrtp2');
  const plain = path.join(TOOLS_DIR, 'rtpblast');
  if (withSrtp(plain)) return { rtpblast: plain };
  try { execFileSync('pkg-config', ['--exists', 'libsrtp2'], { stdio: 'ignore' }); } catch {
    return { rtpblast: null, why: 'libsrtp2 not found (Debian: apt-get install libsrtp2-dev), rtpblast has no --srtp' };
  }
  const dir = `${TOOLS_DIR}-srtp`, bin = path.join(dir, 'rtpblast');
  if (!withSrtp(bin)) {
    process.stdout.write(`building rtpblast with SRTP: make -C ${BENCH_DIR} BUILD=${dir}\n`);
    execFileSync('make', ['-C', BENCH_DIR, `BUILD=${dir}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return withSrtp(bin) ? { rtpblast: bin } : { rtpblast: null, why: `${bin} was built without SRTP` };
}

export interface Target {
  name: string;
  proc: ChildProcess;
  pid: number;
  ngPort: number;
  stop: () => Promise<void>;
}

async function waitPing(port: number, proc: ChildProcess, what: string): Promise<void> {
  const ng = new NgClient(port);
  try {
    for (let i = 0; i < 100; i++) {
      if (proc.exitCode !== null) throw new Error(`${what} exited during start-up`);
      const r = await ng.raw('d7:command4:pinge', undefined, 200);
      if (r !== null) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`${what} did not answer ping`);
  } finally { ng.close(); }
}

function stopper(proc: ChildProcess, signal: NodeJS.Signals): () => Promise<void> {
  return () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
    setTimeout(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); }, 5000).unref();
  });
}

export async function startRtprelay(o: { ngPort: number; portMin: number; portMax: number; workers: number; callThreads?: number; extra?: string[] }): Promise<Target> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-bench-'));
  const args = [path.join(ROOT, 'dist/daemon/main.js'), '--config-file=none', '--interface=127.0.0.1',
    `--listen-ng=127.0.0.1:${o.ngPort}`, `--port-min=${o.portMin}`, `--port-max=${o.portMax}`, '--delete-delay=0',
    '--log-level=4', '--log-stderr', `--state-dir=${stateDir}`, '--db-url=none', `--media-workers=${o.workers}`, `--call-threads=${o.callThreads ?? 0}`, ...(o.extra ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { if (err.length < 20000) err += c.toString(); });
  try { await waitPing(o.ngPort, proc, 'rtprelay'); } catch (e) { throw new Error(`${(e as Error).message}\n${err}`); }
  const stop = stopper(proc, 'SIGINT');
  const name = o.callThreads ? `rtprelay (${o.callThreads} call thread${o.callThreads > 1 ? 's' : ''})` : o.workers > 0 ? `rtprelay (${o.workers} media worker${o.workers > 1 ? 's' : ''})` : 'rtprelay (in-process)';
  return { name, proc, pid: proc.pid!, ngPort: o.ngPort,
    stop: async () => { await stop(); rmSync(stateDir, { recursive: true, force: true }); } };
}

export function hasRtpengine(): boolean {
  try { execFileSync('rtpengine', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** rtpengine userspace-only, as ../shared/bench/scripts/start-rtpengine.sh starts it. */
export async function startRtpengine(o: { ngPort: number; portMin: number; portMax: number; threads?: number }): Promise<Target> {
  const args = ['--foreground', '--log-stderr', '--table=-1', '--interface=127.0.0.1', `--listen-ng=127.0.0.1:${o.ngPort}`,
    `--port-min=${o.portMin}`, `--port-max=${o.portMax}`, '--log-level=3', '--delete-delay=0',
    ...(o.threads ? [`--num-threads=${o.threads}`] : [])];
  const proc = spawn('rtpengine', args, { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitPing(o.ngPort, proc, 'rtpengine');
  return { name: 'rtpengine 10.5 (userspace)', proc, pid: proc.pid!, ngPort: o.ngPort, stop: stopper(proc, 'SIGTERM') };
}

export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Runs a tool to the end (bounded by its own --max-seconds and a kill timer); returns its JSON lines. */
export function runTool(bin: string, args: string[], jsonFile: string, timeoutS: number, echo: boolean): Promise<Record<string, any>[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, [...args, '--json', jsonFile], { stdio: ['ignore', echo ? 'inherit' : 'ignore', echo ? 'inherit' : 'pipe'] });
    let err = '';
    p.stderr?.on('data', (c: Buffer) => { err += c.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutS * 1000);
    p.on('exit', () => {
      clearTimeout(timer);
      let lines: Record<string, any>[] = [];
      try { lines = readFileSync(jsonFile, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)); } catch { /* none */ }
      rmSync(jsonFile, { force: true });
      if (!lines.length) reject(new Error(`${path.basename(bin)} gave no result${err ? `: ${err.slice(-500)}` : ''}`));
      else resolve(lines);
    });
  });
}

export function tmpFile(name: string): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), 'rtprelay-bench-')), name);
}

export function callSdp(port: number, sessionId: number): string {
  return ['v=0', `o=- ${sessionId} 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${port} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000',
    `a=rtcp:${port + 1}`, 'a=ptime:20', 'a=sendrecv', ''].join('\r\n');
}
