// `npm run soak`: bounded endurance run. rtprelay (media workers = cores) carries --calls concurrent
// G.711 calls: --blast-calls of them carry RTP both ways at 50 pps per stream (rtpblast, fixed
// load), the others churn at --cps calls a second started and ended over NG. Every 10 s it
// samples the daemon's open files, heap and event-loop delay (/metrics). At the end it checks:
// open files back to baseline, heap growth from minute 2 to the end < 5 %, event-loop delay
// p99 < 5 ms, media loss < 0.1 %, no NG command failed. --srtp-calls more calls (counted in
// --calls) carry SDES-SRTP caller <-> plain RTP callee (a second rtpblast, --srtp; needs libsrtp2,
// skipped with the reason otherwise) and must lose < 0.1 % too.
//   node dist/test/bench/soak.js [--minutes=10] [--calls=1000] [--cps=50] [--blast-calls=300] [--srtp-calls=50] [--workers=N]
import os from 'node:os';
import { buildSrtpBlast, buildTools, callSdp, openFiles, rssKb, runTool, startRtprelay, tmpFile } from './harness.js';
import { NgClient } from '../support/ng-client.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: number): number => Number(argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1] ?? d);
const minutes = opt('minutes', 10);
const totalCalls = opt('calls', 1000);
const cps = opt('cps', 50);
const blastCalls = Math.min(opt('blast-calls', 300), totalCalls);
const srtpCalls = Math.min(opt('srtp-calls', 50), totalCalls - blastCalls);
const workers = opt('workers', Math.max(1, os.availableParallelism() - 1)); // the daemon's --media-workers=auto
const churnCalls = totalCalls - blastCalls - srtpCalls;
const holdMs = (churnCalls / cps) * 1000;
// A quarter of all calls are SDES-SRTP (the performance issue's soak): the SRTP media calls, and
// enough of the churning calls offered as RTP/SAVP with a=crypto (answered as plain RTP/AVP).
const srtpShare = churnCalls > 0 ? Math.max(0, Math.min(1, (totalCalls / 4 - srtpCalls) / churnCalls)) : 0;
const isSrtpChurn = (i: number): boolean => Math.floor(i * srtpShare) !== Math.floor((i - 1) * srtpShare);
const SRTP_KEY = 'inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz';
const srtpSdp = (port: number, i: number): string => callSdp(port, i).replace('RTP/AVP', 'RTP/SAVP')
  .replace('a=ptime:20', `a=crypto:1 AES_CM_128_HMAC_SHA1_80 ${SRTP_KEY}\r\na=ptime:20`);
const HTTP_PORT = 23291;

const log = (s: string): void => { process.stdout.write(s + '\n'); };

async function scrape(): Promise<{ heap: number; lagP99: number }> {
  const text = await (await fetch(`http://127.0.0.1:${HTTP_PORT}/metrics`)).text();
  const get = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  // rtprelay_eventloop_delay_seconds: how late 1-ms samples came (prom-client's own lag figure is a
  // whole 10-ms interval, so never under 10 ms).
  const lag = Number(/^rtprelay_eventloop_delay_seconds\{quantile="0\.99"\} (\S+)/m.exec(text)?.[1] ?? NaN);
  return { heap: get('rtprelay_process_nodejs_heap_size_used_bytes'), lagP99: lag * 1000 };
}

async function main(): Promise<void> {
  const tools = buildTools();
  const durationS = Math.max(30, Math.round(minutes * 60));
  log(`soak: ${minutes} min, ${totalCalls} concurrent calls (${blastCalls} with RTP both ways at 50 pps, ${srtpCalls} SDES-SRTP <-> RTP, ${churnCalls} churning at ${cps}/s, held ${(holdMs / 1000).toFixed(0)} s), ${workers} media workers`);
  const t = await startRtprelay({ ngPort: 23211, portMin: 4000, portMax: 19999, workers, extra: [`--listen-http=127.0.0.1:${HTTP_PORT}`] });
  const ng = new NgClient(t.ngPort);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const fdBase = openFiles(t.pid);
    const began = Date.now();
    const endAt = began + durationS * 1000;
    const blast = runTool(tools.rtpblast, ['--ng', `127.0.0.1:${t.ngPort}`, '--calls', String(blastCalls), '--duration', String(durationS - 15),
      '--warmup', '2', '--pid', String(t.pid), '--quiet-wait', '0', '--noise-retries', '0', '--no-confirm', '--max-seconds', String(durationS + 60)],
    tmpFile('soak-blast.jsonl'), durationS + 90, false);
    // The SRTP share: its own rtpblast, local ports clear of the plain one's (2 per call from 44000).
    const srtpBlast = srtpCalls > 0 ? buildSrtpBlast() : null;
    if (srtpBlast?.rtpblast === null) log(`SRTP share skipped: ${srtpBlast.why}`);
    const srtp = srtpBlast?.rtpblast ? runTool(srtpBlast.rtpblast, ['--ng', `127.0.0.1:${t.ngPort}`, '--srtp', '--calls', String(srtpCalls),
      '--duration', String(durationS - 15), '--warmup', '2', '--lport-base', String(44000 + 2 * blastCalls + 100), '--pid', String(t.pid),
      '--quiet-wait', '0', '--noise-retries', '0', '--no-confirm', '--max-seconds', String(durationS + 60), '--label', 'soak-srtp'],
    tmpFile('soak-srtp.jsonl'), durationS + 90, false) : null;
    let ngFailed = 0, ngCommands = 0, started = 0, ended = 0, srtpChurn = 0;
    const live: { id: string; endMs: number }[] = [];
    const cmd = async (d: Record<string, string>): Promise<boolean> => {
      ngCommands++;
      try {
        const r = await ng.cmd(d);
        if (r.result !== 'ok') { ngFailed++; return false; }
        return true;
      } catch { ngFailed++; return false; }
    };
    const samples: { s: number; heap: number; lagP99: number; fds: number; rssMb: number }[] = [];
    let seq = 0;
    const tickMs = 100;
    let nextSample = began + 10_000;
    while (Date.now() < endAt) {
      const now = Date.now();
      // Start this tick's share of new calls; end those whose time is up.
      const due = Math.floor(((now - began) / 1000) * cps) - started;
      for (let k = 0; k < due && now < endAt - 5000; k++) {
        const id = `soak-${seq++}`;
        started++;
        const i = seq;
        const offer: Record<string, string> = isSrtpChurn(i)
          ? { command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: srtpSdp(6000 + (i % 1000) * 2, i), 'transport-protocol': 'RTP/AVP' }
          : { command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: callSdp(6000 + (i % 1000) * 2, i) };
        if (offer['transport-protocol']) srtpChurn++;
        void cmd(offer)
          .then((ok) => ok && cmd({ command: 'answer', 'call-id': id, 'from-tag': 'a', 'to-tag': 'b', sdp: callSdp(8000 + (i % 1000) * 2, i) }));
        live.push({ id, endMs: now + holdMs });
      }
      while (live.length && live[0]!.endMs <= now) { const c = live.shift()!; ended++; void cmd({ command: 'delete', 'call-id': c.id }); }
      if (now >= nextSample) {
        nextSample += 10_000;
        try {
          const m = await scrape();
          const s = { s: Math.round((now - began) / 1000), ...m, fds: openFiles(t.pid), rssMb: rssKb(t.pid) / 1024 };
          samples.push(s);
          log(`${String(s.s).padStart(5)} s  calls ${live.length + blastCalls + srtpCalls}  heap ${(s.heap / 2 ** 20).toFixed(1)} MiB  rss ${s.rssMb.toFixed(0)} MiB  loop p99 ${s.lagP99.toFixed(2)} ms  fds ${s.fds}  ng ${ngCommands} (${ngFailed} failed)`);
        } catch (e) { log(`metrics scrape failed: ${(e as Error).message}`); }
      }
      await new Promise((r) => setTimeout(r, tickMs));
    }
    for (const c of live.splice(0)) { ended++; await cmd({ command: 'delete', 'call-id': c.id }); }
    const blastLines = await blast.catch((e: Error) => { log(`rtpblast: ${e.message}`); return []; });
    const step = blastLines.filter((l) => l.kind === 'step' && l.step !== 0).at(-1) ?? blastLines.at(-1);
    const srtpLines = srtp ? await srtp.catch((e: Error) => { log(`rtpblast --srtp: ${e.message}`); return [{} as Record<string, any>]; }) : [];
    const srtpStep = srtpLines.filter((l) => l.kind === 'step' && l.step !== 0).at(-1) ?? srtpLines.at(-1);
    // The last deletes' sockets stay bound for --socket-park (30 s by default) in case a new call
    // is given their ports, then close: give it that and 10 s more.
    let fdEnd = openFiles(t.pid);
    for (let waited = 0; fdEnd > fdBase + 2 && waited < 40_000; waited += 250) {
      await new Promise((r) => setTimeout(r, 250));
      fdEnd = openFiles(t.pid);
    }
    if (fdEnd > fdBase + 2) {
      const left = await ng.cmd({ command: 'list', limit: 5 }).catch(() => null);
      log(`calls still open at the end: ${JSON.stringify(left)}`);
    }
    // Heap: median of the samples around minute 2 against the median of the last three.
    const med = (xs: number[]): number => { const v = [...xs].sort((a, b) => a - b); return v[Math.floor(v.length / 2)] ?? NaN; };
    const atTwo = samples.filter((s) => s.s >= 100 && s.s <= 140).map((s) => s.heap);
    const early = atTwo.length ? med(atTwo) : med(samples.slice(0, 3).map((s) => s.heap));
    const late = med(samples.slice(-3).map((s) => s.heap));
    const growth = ((late - early) / early) * 100;
    const lagP99 = Math.max(...samples.filter((s) => s.s > 20).map((s) => s.lagP99));
    const loss = Number(step?.loss_pct ?? NaN);
    const checks: [string, boolean, string][] = [
      ['open files back to baseline', fdEnd <= fdBase + 2, `${fdBase} at start, ${fdEnd} at the end`],
      ['heap growth minute 2 -> end < 5 %', growth < 5, `${(early / 2 ** 20).toFixed(1)} -> ${(late / 2 ** 20).toFixed(1)} MiB (${growth.toFixed(1)} %, main thread)`],
      ['event-loop delay p99 < 5 ms', lagP99 < 5, `worst 10 s window ${lagP99.toFixed(2)} ms`],
      ['media loss < 0.1 %', loss < 0.1, `${loss.toFixed(4)} % of ${step?.sent ?? '?'} packets, p99 ${step?.lat_p99_us ?? '?'} us, oth% ${step?.other_cpu_pct ?? '?'}`],
      ...(srtpStep ? [['SRTP media loss < 0.1 %', Number(srtpStep.loss_pct ?? NaN) < 0.1,
        `${Number(srtpStep.loss_pct ?? NaN).toFixed(4)} % of ${srtpStep.sent ?? '?'} packets (${srtpCalls} SDES-SRTP <-> RTP calls), p99 ${srtpStep.lat_p99_us ?? '?'} us`]] as [string, boolean, string][] : []),
      ['no NG command failed', ngFailed === 0, `${ngCommands} commands, ${ngFailed} failed; ${started} churn calls started (${srtpChurn} SDES-SRTP), ${ended} ended`],
    ];
    log('');
    for (const [what, ok, detail] of checks) log(`${ok ? 'PASS' : 'FAIL'}  ${what}: ${detail}`);
    process.exitCode = checks.every((c) => c[1]) ? 0 : 1;
  } finally {
    ng.close();
    await t.stop();
  }
}

main().catch((e) => { process.stderr.write(`soak: ${(e as Error).stack ?? e}\n`); process.exit(1); });
