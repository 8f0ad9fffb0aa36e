// `npm run bench`: the performance yardstick. Starts rtprelay (and rtpengine when installed), drives
// each with ../shared/bench's ngload and rtpblast, and prints in one run: the plain relay rate at
// the pass criterion (loss < 0.1 %, one-way p99 <= 10 ms), the added latency p50/p99, NG
// commands/s and latency, memory per idle call, and the rtprelay/rtpengine ratios. Then the SRTP
// part: SDES-SRTP caller -> plain RTP callee (rtpblast --search --srtp: the relay decrypts every
// caller packet and encrypts every callee packet), relayed packets/s for each relay and the ratio.
//   node dist/test/bench/bench.js [--quick] [--workers=N[,M]] [--call-threads=N[,M]] [--idle-calls=N] [--ng-rounds=N] [--ng-only] [--no-rtpengine] [--json=FILE]
//                                 [--no-srtp | --srtp-only] [--srtp-workers=N] [--no-scaling | --scaling-only]
// Bounded: each tool has --max-seconds; default well under 15 min, --quick about 3 min.
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import {
  buildSrtpBlast, buildTools, callSdp, hasRtpengine, rssKb, runTool, startRtpengine, startRtprelay, tmpFile, type Target,
} from './harness.js';
import { NgClient } from '../support/ng-client.js';

const argv = process.argv.slice(2);
const flag = (k: string): boolean => argv.includes(`--${k}`);
const opt = (k: string): string | undefined => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
const quick = flag('quick');
const cores = os.cpus().length;
// The daemon's default (--media-workers=auto: one per core but one); the full run adds in-process and one per core.
const autoWorkers = Math.max(1, cores - 1);
const workerModes = (opt('workers') ?? (quick ? String(autoWorkers) : [...new Set([0, autoWorkers, cores])].join(','))).split(',').map(Number);
// Call threads (the session core spread by call-id, each thread with its own media): one per core by default.
const threadModes = (opt('call-threads') ?? String(cores)).split(',').map(Number).filter((n) => n > 0);
const idleCalls = Number(opt('idle-calls') ?? (quick ? 1000 : 4000));
// Five rounds: with three, one slow round of either relay (this VM has them) moved the median ratio by a tenth and more.
const ngRoundCount = Math.max(1, Number(opt('ng-rounds') ?? 5));
const withRtpengine = !flag('no-rtpengine') && hasRtpengine();
const jsonOut = opt('json');
const srtpOnly = flag('srtp-only'), withSrtp = srtpOnly || !flag('no-srtp');
// --ng-only: the NG rounds alone (no relay, memory, ping, SRTP or scaling part), for comparing
// NG throughput with more rounds (--ng-rounds) in a few minutes.
const ngOnly = flag('ng-only');
const scalingOnly = flag('scaling-only'), withScaling = !ngOnly && (scalingOnly || (!srtpOnly && !flag('no-scaling')));
// SRTP is measured with one rtprelay mode: the daemon's default media workers unless given. Not
// the full run's last mode (one worker per core): with as many workers as cores and a blaster
// that needs most of a core for libsrtp, the workers wait for CPU and the p99 criterion fails
// first (eighteenth session, this 2-core machine: 2 workers x0.66 rtpengine, 1 worker x1.00).
const srtpWorkers = Number(opt('srtp-workers') ?? autoWorkers);

// Ports: rtpengine 4000-19999 and NG 23200 (../shared/bench README); rtprelay the same media range
// (one relay runs at a time; below 32768, the kernel's ephemeral ports), NG 23210; rtpblast binds
// from 44000 up.
const RTPRELAY = { ngPort: 23210, portMin: 4000, portMax: 19999 };
const RTPENGINE = { ngPort: 23200, portMin: 4000, portMax: 19999 };

interface Figures {
  name: string;
  strictPps: number; strictP50Us: number; strictP99Us: number; strictRelayCpu: number; strictOtherCpu: number;
  lossOnlyPps: number;
  /** NG offer+answer+delete: the median of `ngRuns` (commands/s of each round). */
  ngCmdPerS: number; ngP50Us: number; ngP99Us: number; ngRelayCpu: number; ngOtherCpu: number; ngRuns: number[];
  rssIdleKb: number; kbPerCall: number;
  maxOtherCpu: number;
  /** NG ping round trip while the media plane relays at 80 % of its strict rate. */
  pingP50Us: number; pingP99Us: number; pingLoadPps: number;
}

const log = (s: string): void => { process.stdout.write(s + '\n'); };

/**
 * Offer + answer for `n` calls (held, idle), 32 in flight; then the RSS delta per call; then deletes
 * them. Calls that fail to set up are counted and reported, and the figure is per call set up: one
 * mode's refusal must not lose the rest of a 20-minute run.
 */
async function memoryPerCall(t: Target, n: number): Promise<{ rssIdleKb: number; kbPerCall: number; failed: number; reasons: string }> {
  const ng = new NgClient(t.ngPort);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssKb(t.pid);
    let next = 0, failed = 0;
    const reasons = new Map<string, number>();
    const one = async (i: number): Promise<void> => {
      const id = `mem-${i}`;
      const o = await ng.cmd({ command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: callSdp(6000 + (i % 1000) * 2, i) });
      const a = o.result === 'ok' ? await ng.cmd({ command: 'answer', 'call-id': id, 'from-tag': 'a', 'to-tag': 'b', sdp: callSdp(8000 + (i % 1000) * 2, i) }) : o;
      if (a.result !== 'ok') {
        failed++;
        const why = String(a['error-reason'] ?? a.result);
        reasons.set(why, (reasons.get(why) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 32 }, async () => { while (next < n) await one(next++); }));
    await new Promise((r) => setTimeout(r, 1500));
    const after = rssKb(t.pid);
    next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < n) { const i = next++; await ng.cmd({ command: 'delete', 'call-id': `mem-${i}` }); }
    }));
    return { rssIdleKb: before, kbPerCall: (after - before) / Math.max(1, n - failed), failed, reasons: [...reasons].map(([k, v]) => `${v}x ${k}`).join(', ') };
  } finally { ng.close(); }
}

/**
 * NG `ping` latency while rtpblast holds the media plane at `rate` packets/s: 100 pings a second,
 * one at a time, for the whole fixed-rate run (control must never starve behind media).
 */
async function pingUnderLoad(t: Target, rtpblast: string, rate: number): Promise<{ p50Us: number; p99Us: number; pps: number }> {
  const ng = new NgClient(t.ngPort);
  const lat: number[] = [];
  let running = true;
  const pinger = (async () => {
    await new Promise((r) => setTimeout(r, 1500)); // calls set up and warm-up first
    for (let i = 0; running && i < 3000; i++) {
      const t0 = process.hrtime.bigint();
      const r = await ng.raw('d7:command4:pinge', undefined, 1000);
      lat.push(r === null ? 1_000_000 : Number(process.hrtime.bigint() - t0) / 1000);
      await new Promise((res) => setTimeout(res, 10));
    }
  })();
  try {
    const lines = await runTool(rtpblast, ['--ng', `127.0.0.1:${t.ngPort}`, '--rate', String(Math.round(rate)), '--duration', quick ? '6' : '12',
      '--pid', String(t.pid), '--max-seconds', '60', '--quiet-wait', '5', '--lport-base', '50000'], tmpFile('rtpblast-ping.jsonl'), 90, false);
    const r = lines.find((l) => l.kind === 'result') ?? {};
    running = false;
    await pinger;
    lat.sort((a, b) => a - b);
    const q = (p: number): number => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : 0;
    return { p50Us: q(0.5), p99Us: q(0.99), pps: r.loss_relayed_pps ?? r.strict_relayed_pps ?? 0 };
  } finally { running = false; ng.close(); }
}

async function measure(start: () => Promise<Target>, tools: { ngload: string; rtpblast: string }): Promise<Figures> {
  const t = await start();
  log(`\n== ${t.name}, pid ${t.pid}`);
  try {
    const mem = await memoryPerCall(t, idleCalls);
    log(`memory: RSS ${(mem.rssIdleKb / 1024).toFixed(1)} MiB idle, ${mem.kbPerCall.toFixed(1)} KiB per call (${idleCalls - mem.failed} idle calls)`);
    if (mem.failed) log(`WARNING: ${mem.failed} of ${idleCalls} idle calls failed to set up (${mem.reasons})`);
    const blast = await runTool(tools.rtpblast, ['--ng', `127.0.0.1:${t.ngPort}`, '--search', '--pid', String(t.pid),
      '--duration', quick ? '2' : '4', '--start', '10000', '--factor', quick ? '1.3' : '1.15', '--refine', quick ? '0' : '1',
      '--max-seconds', quick ? '90' : '240', '--quiet-wait', quick ? '5' : '15', '--calls', '3500'],
    tmpFile('rtpblast.jsonl'), quick ? 120 : 300, true);
    const r = blast.find((l) => l.kind === 'result') ?? {};
    const steps = blast.filter((l) => l.kind === 'step');
    const ping = (r.strict_relayed_pps ?? 0) > 0 ? await pingUnderLoad(t, tools.rtpblast, 0.8 * r.strict_relayed_pps) : { p50Us: 0, p99Us: 0, pps: 0 };
    log(`NG ping under media load (${ping.pps.toFixed(0)} pps, 80 % of the strict rate): p50 ${ping.p50Us.toFixed(0)} us, p99 ${ping.p99Us.toFixed(0)} us`);
    return {
      pingP50Us: ping.p50Us, pingP99Us: ping.p99Us, pingLoadPps: ping.pps,
      name: t.name,
      strictPps: r.strict_relayed_pps ?? 0, strictP50Us: r.strict_lat_p50_us ?? 0, strictP99Us: r.strict_lat_p99_us ?? 0,
      strictRelayCpu: r.strict_relay_cpu_pct ?? 0, strictOtherCpu: r.strict_other_cpu_pct ?? 0,
      lossOnlyPps: r.loss_relayed_pps ?? 0,
      ngCmdPerS: 0, ngP50Us: 0, ngP99Us: 0, ngRelayCpu: 0, ngOtherCpu: 0, ngRuns: [],
      rssIdleKb: mem.rssIdleKb, kbPerCall: mem.kbPerCall,
      maxOtherCpu: Math.max(0, ...steps.map((s) => s.other_cpu_pct ?? 0)),
    };
  } finally { await t.stop(); }
}

/** A row with no figures yet (--ng-only: the NG rounds fill in the name and the NG figures). */
function emptyRow(): Figures {
  return {
    name: '', strictPps: 0, strictP50Us: 0, strictP99Us: 0, strictRelayCpu: 0, strictOtherCpu: 0, lossOnlyPps: 0,
    ngCmdPerS: 0, ngP50Us: 0, ngP99Us: 0, ngRelayCpu: 0, ngOtherCpu: 0, ngRuns: [], rssIdleKb: 0, kbPerCall: 0, maxOtherCpu: 0,
    pingP50Us: 0, pingP99Us: 0, pingLoadPps: 0,
  };
}

/**
 * NG offer+answer+delete throughput, in rounds that alternate the relays (each started afresh, so
 * none inherits another's state): this machine's speed drifts by 20 % and more within minutes, and
 * one run each had rtpengine anywhere between 10,900 and 20,200 commands/s. Each relay's figure is
 * the median of its rounds (ngload's figures of that run: latency, CPU).
 */
async function ngRounds(starts: (() => Promise<Target>)[], rows: Figures[], ngload: string, rounds: number): Promise<void> {
  const runs: Record<string, any>[][] = starts.map(() => []);
  for (let r = 1; r <= rounds; r++) {
    for (let i = 0; i < starts.length; i++) {
      const t = await starts[i]!();
      rows[i]!.name ||= t.name;
      try {
        // Steady state: the warm-up (not measured) lets a JIT runtime compile its hot code first, each
        // call thread its own; with 500 warm-up calls the measured window was mostly compilation,
        // and with 4,000 (quick, before the eighteenth session) part of it still was: a fresh
        // daemon fed 12,000-command runs back to back did 9,900, 20,700, then 23,100-25,100
        // commands/s. 8,000 calls are 24,000 commands, ~1.2 s more a round.
        const ng = (await runTool(ngload, ['--ng', `127.0.0.1:${t.ngPort}`, '--calls', quick ? '8000' : '20000', '--warmup-calls', quick ? '8000' : '10000',
          '--concurrency', '16', '--pid', String(t.pid), '--max-seconds', quick ? '60' : '120', '--quiet-wait', quick ? '5' : '15'],
        tmpFile('ngload.jsonl'), quick ? 90 : 180, false)).at(-1)!;
        runs[i]!.push(ng);
        log(`NG round ${r}/${rounds}, ${t.name}: ${Number(ng.cmd_per_s).toFixed(0)} commands/s, p50 ${ng.p50_us} us, p99 ${ng.p99_us} us, ` +
          `relay CPU ${Number(ng.relay_cpu_pct).toFixed(0)} %, others ${Number(ng.other_cpu_pct).toFixed(0)} %`);
      } finally { await t.stop(); }
    }
  }
  for (let i = 0; i < starts.length; i++) {
    const sorted = [...runs[i]!].sort((a, b) => a.cmd_per_s - b.cmd_per_s);
    const m = sorted[Math.floor((sorted.length - 1) / 2)]!;
    const f = rows[i]!;
    f.ngRuns = runs[i]!.map((x) => Math.round(x.cmd_per_s));
    f.ngCmdPerS = m.cmd_per_s; f.ngP50Us = m.p50_us; f.ngP99Us = m.p99_us; f.ngRelayCpu = m.relay_cpu_pct; f.ngOtherCpu = m.other_cpu_pct;
    f.maxOtherCpu = Math.max(f.maxOtherCpu, ...runs[i]!.map((x) => x.other_cpu_pct ?? 0));
  }
}

function table(rows: Figures[]): string {
  const head = ['relay', 'strict pps', 'p50 us', 'p99 us', 'relay%', 'oth%', 'loss-only pps', 'NG cmd/s', 'NG p50 us', 'NG p99 us', 'ping p99 us @80%', 'KiB/call', 'max oth%'];
  const body = rows.map((f) => [f.name, f.strictPps.toFixed(0), f.strictP50Us.toFixed(0), f.strictP99Us.toFixed(0), f.strictRelayCpu.toFixed(0),
    f.strictOtherCpu.toFixed(0), f.lossOnlyPps.toFixed(0), f.ngCmdPerS.toFixed(0), String(f.ngP50Us), String(f.ngP99Us), f.pingP99Us.toFixed(0), f.kbPerCall.toFixed(1),
    f.maxOtherCpu.toFixed(0)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')).join('\n');
}

// ---- SRTP part: SDES-SRTP caller -> plain RTP callee ------------------------------------

interface SrtpFigures {
  name: string;
  strictPps: number; strictP50Us: number; strictP99Us: number; strictRelayCpu: number; strictOtherCpu: number;
  lossOnlyPps: number; maxOtherCpu: number;
}

/** rtpblast --search --srtp against one relay: the relayed packets/s (both directions together) at the pass criterion. */
async function measureSrtp(start: () => Promise<Target>, rtpblast: string): Promise<SrtpFigures> {
  const t = await start();
  log(`\n== SRTP -> RTP: ${t.name}, pid ${t.pid}`);
  try {
    const blast = await runTool(rtpblast, ['--ng', `127.0.0.1:${t.ngPort}`, '--search', '--srtp', '--pid', String(t.pid),
      '--duration', quick ? '2' : '4', '--start', '5000', '--factor', quick ? '1.3' : '1.15', '--refine', quick ? '0' : '1',
      '--max-seconds', quick ? '90' : '240', '--quiet-wait', quick ? '5' : '15', '--calls', '3500', '--label', 'srtp'],
    tmpFile('rtpblast-srtp.jsonl'), quick ? 120 : 300, true);
    const r = blast.find((l) => l.kind === 'result') ?? {};
    const steps = blast.filter((l) => l.kind === 'step');
    return {
      name: t.name,
      strictPps: r.strict_relayed_pps ?? 0, strictP50Us: r.strict_lat_p50_us ?? 0, strictP99Us: r.strict_lat_p99_us ?? 0,
      strictRelayCpu: r.strict_relay_cpu_pct ?? 0, strictOtherCpu: r.strict_other_cpu_pct ?? 0, lossOnlyPps: r.loss_relayed_pps ?? 0,
      maxOtherCpu: Math.max(0, ...steps.map((s) => s.other_cpu_pct ?? 0)),
    };
  } finally { await t.stop(); }
}

function srtpTable(rows: SrtpFigures[]): string {
  const head = ['relay (SRTP caller -> RTP callee)', 'strict pps', 'p50 us', 'p99 us', 'relay%', 'oth%', 'loss-only pps', 'max oth%'];
  const body = rows.map((f) => [f.name, f.strictPps.toFixed(0), f.strictP50Us.toFixed(0), f.strictP99Us.toFixed(0), f.strictRelayCpu.toFixed(0),
    f.strictOtherCpu.toFixed(0), f.lossOnlyPps.toFixed(0), f.maxOtherCpu.toFixed(0)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')).join('\n');
}

/** The SRTP part for rtprelay (media workers: `srtpWorkers`) and rtpengine; prints its table and ratios. */
async function srtpPart(plain: Figures[]): Promise<SrtpFigures[]> {
  const built = buildSrtpBlast();
  if (built.rtpblast === null) { log(`\nSRTP part skipped: ${built.why}`); return []; }
  const rows: SrtpFigures[] = [await measureSrtp(() => startRtprelay({ ...RTPRELAY, workers: srtpWorkers }), built.rtpblast)];
  if (withRtpengine) rows.push(await measureSrtp(() => startRtpengine(RTPENGINE), built.rtpblast));
  log('\nSRTP: SDES-SRTP (AES_CM_128_HMAC_SHA1_80) caller <-> plain RTP callee, both directions; pps = relayed packets/s\n' + srtpTable(rows));
  for (const f of rows) {
    const p = plain.find((x) => x.name === f.name);
    if (p && p.strictPps > 0) log(`${f.name}: SRTP relay rate / plain relay rate x${(f.strictPps / p.strictPps).toFixed(2)}`);
  }
  if (withRtpengine && rows.length === 2) {
    const [ours, engine] = rows as [SrtpFigures, SrtpFigures];
    log(`${ours.name} / rtpengine, SRTP -> RTP: relay rate x${(ours.strictPps / Math.max(1, engine.strictPps)).toFixed(2)}, ` +
      `p99 latency x${(ours.strictP99Us / Math.max(1, engine.strictP99Us)).toFixed(2)}`);
  }
  return rows;
}

// ---- Scaling part: 1 and 2 media workers at one fixed rate, CPU per thread -----------------

interface ScalingFigures {
  workers: number;
  /** Relayed packets/s of the fixed-rate run. */
  pps: number;
  /** CPU % of a core per thread name (a media worker with its socket thread as `media-N`). */
  threads: Record<string, number>;
  /** The busiest media worker's CPU %: it saturates first when each worker has a core of its own. */
  busiestPct: number;
}

const hasTaskset = (): boolean => { try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); return true; } catch { return false; } };
const CLK_TCK = ((): number => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100; } catch { return 100; } })();

/** CPU ticks (user + system) of each of a process's threads, summed by thread name. */
function ticksByName(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd on
      // A worker's socket thread ("media-0-io") is part of what the worker costs.
      const key = name.replace(/-io$/, '');
      out.set(key, (out.get(key) ?? 0) + Number(f[11]) + Number(f[12]));
    } catch { /* the thread ended */ }
  }
  return out;
}

/**
 * The ≥ 1.7× scaling point wants the plain relay rate with 2 media workers against 1, with the
 * load generator on other cores; on a 2-core machine rtpblast needs most of one core, so the
 * rates cannot be measured (2 workers did 62,746 pps against 81,572 with 1 in one run: the
 * generator, not the relay, ran out of CPU). What can be measured here is what each worker costs:
 * the same fixed rate through 1 and through 2 workers, CPU per thread from /proc (threads are named,
 * `media-N`). With a core per worker the relay saturates when its busiest worker does, so
 * (1 worker's CPU) / (2 workers' busiest CPU) is the rate ratio those cores would give, if nothing
 * else (the generator, the NIC, the kernel's locks) limits first. The relay is pinned to one CPU and
 * the generator to another, both workers of the second run on the same one. Needs the native addon
 * (thread names).
 */
async function scalingPart(rtpblast: string): Promise<ScalingFigures[]> {
  const rate = quick ? 20000 : 30000, seconds = quick ? 8 : 12, pin = cores >= 2 && hasTaskset();
  const rows: ScalingFigures[] = [];
  const media = (threads: Record<string, number>): number[] => Object.keys(threads).filter((n) => /^media-\d+$/.test(n)).map((n) => threads[n]!);
  for (const workers of [1, 2]) {
    const t = await startRtprelay({ ...RTPRELAY, workers });
    try {
      // The relay's threads on CPU 0 and rtpblast on CPU 1: where the scheduler puts them otherwise moves
      // a worker's CPU per packet by half between runs (12-18 us unpinned, 19-21 pinned, 20,000 pps).
      if (pin) execFileSync('taskset', ['-a', '-pc', '0', String(t.pid)], { stdio: 'ignore' });
      const run = runTool(rtpblast, ['--ng', `127.0.0.1:${t.ngPort}`, '--rate', String(rate), '--duration', String(seconds), ...(pin ? ['--cpu', '1'] : []),
        '--pid', String(t.pid), '--max-seconds', '60', '--quiet-wait', '5'], tmpFile('rtpblast-scaling.jsonl'), 90, false);
      // Calls set up and warm-up (1 s) first, and the window ends before the run does.
      const settle = 3000, windowMs = (seconds - 3) * 1000;
      await new Promise((r) => setTimeout(r, settle));
      const a = ticksByName(t.pid);
      await new Promise((r) => setTimeout(r, windowMs));
      const b = ticksByName(t.pid);
      const r = (await run).find((l) => l.kind === 'result') ?? {};
      const threads: Record<string, number> = {};
      for (const [name, n] of b) threads[name] = (100 * (n - (a.get(name) ?? 0))) / CLK_TCK / (windowMs / 1000);
      if (media(threads).length !== workers) throw new Error(`threads named ${Object.keys(threads).join(', ')}: no media-N per worker (native addon not built?)`);
      rows.push({ workers, pps: r.loss_relayed_pps ?? r.strict_relayed_pps ?? 0, threads, busiestPct: Math.max(...media(threads)) });
      log(`${t.name} at ${rate} pps: relayed ${rows.at(-1)!.pps.toFixed(0)} pps; CPU % by thread: ` +
        Object.entries(threads).filter(([, v]) => v >= 0.5).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', '));
    } finally { await t.stop(); }
  }
  const [one, two] = rows as [ScalingFigures, ScalingFigures];
  const us = (f: ScalingFigures): string => ((media(f.threads).reduce((x, y) => x + y, 0) / 100) * 1e6 / Math.max(1, f.pps)).toFixed(1);
  log(`scaling at ${rate} pps${pin ? ' (relay on CPU 0, rtpblast on CPU 1)' : ''}: 1 worker ${one.busiestPct.toFixed(1)} % of a core (${us(one)} us a packet); ` +
    `2 workers ${media(two.threads).map((p) => p.toFixed(1)).join(' % + ')} % (${us(two)} us a packet in all); ` +
    `projected rate with a core per worker, 2 workers / 1: x${(one.busiestPct / Math.max(0.1, two.busiestPct)).toFixed(2)} ` +
    '(from CPU per thread at one fixed rate, not a measured maximum rate)');
  return rows;
}

async function main(): Promise<void> {
  const began = Date.now();
  const tools = buildTools();
  log(`machine: ${os.cpus()[0]?.model ?? '?'} x ${cores}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);
  log(`mode: ${quick ? 'quick' : 'full'}; rtprelay media workers: ${workerModes.join(', ')}; call threads: ${threadModes.join(', ') || 'none'}; rtpengine: ${withRtpengine ? 'yes' : 'not installed / off'}`);
  log('the load generator runs on the same cores: figures are "relay + blaster on this machine"; oth% = other processes (noise)');
  const rows: Figures[] = [];
  if (!srtpOnly && !scalingOnly) {
    const starts = [
      ...workerModes.map((workers) => () => startRtprelay({ ...RTPRELAY, workers })),
      ...threadModes.map((callThreads) => () => startRtprelay({ ...RTPRELAY, workers: 0, callThreads })),
      ...(withRtpengine ? [() => startRtpengine(RTPENGINE)] : []),
    ];
    if (ngOnly) for (let i = 0; i < starts.length; i++) rows.push(emptyRow());
    else for (const start of starts) rows.push(await measure(start, tools));
    log(`\n== NG offer+answer+delete, ${ngRoundCount} alternating rounds (median of each relay's rounds)`);
    await ngRounds(starts, rows, tools.ngload, ngRoundCount);
    log('\n' + table(rows));
  }
  const engine = withRtpengine && rows.length ? rows.at(-1)! : null;
  if (engine) {
    for (const f of rows.slice(0, -1)) {
      const ng = `NG cmd/s x${(f.ngCmdPerS / engine.ngCmdPerS).toFixed(2)} (rounds: ${f.ngRuns.join(', ')} against ${engine.ngRuns.join(', ')})`;
      if (ngOnly) { log(`${f.name} / rtpengine: ${ng}`); continue; }
      log(`${f.name} / rtpengine: relay rate x${(f.strictPps / engine.strictPps).toFixed(2)}, p99 latency x${(f.strictP99Us / Math.max(1, engine.strictP99Us)).toFixed(2)}, ` +
        `${ng}, memory per call x${(f.kbPerCall / Math.max(0.1, engine.kbPerCall)).toFixed(2)}`);
    }
  }
  const inproc = rows.find((f) => f.name.includes('in-process')), multi = rows.find((f) => f.name.includes('workers'));
  if (inproc && multi) log(`${multi.name} / in-process: relay rate x${(multi.strictPps / inproc.strictPps).toFixed(2)}`);
  let scaling: ScalingFigures[] = [];
  if (withScaling) {
    log('\n== scaling: the same fixed rate through 1 and 2 media workers, CPU per thread');
    try { scaling = await scalingPart(tools.rtpblast); } catch (e) { log(`scaling part skipped: ${(e as Error).message}`); }
  }
  const srtpRows = withSrtp && !scalingOnly && !ngOnly ? await srtpPart(rows) : [];
  log(`\nbench took ${((Date.now() - began) / 1000).toFixed(0)} s`);
  if (jsonOut) appendFileSync(jsonOut, JSON.stringify({ when: new Date().toISOString(), quick, cores, rows, scaling, srtpRows }) + '\n');
}

main().catch((e) => { process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`); process.exit(1); });
