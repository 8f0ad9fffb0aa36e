// Run by hand: node dist/test/bench/ng-cpu.js [--calls=N] [--inflight=W] [--plane=real|stub] [--log=info|warn]
//                                            [--records] [--metrics]
// CPU time per NG command of the control path alone: ngload's offer -> answer -> delete, fed to
// NgServer.handle() in-process (no NG socket, no load generator sharing the CPU), W calls in
// flight. `--plane=stub` replaces the media plane's sockets with counters, which leaves the JS
// cost of the session and control code (what a profile of this run shows is ours to cut);
// `--plane=real` binds and closes the real dgram sockets as the daemon does.
import { Writable } from 'node:stream';
import pino from 'pino';
import { NgServer } from '../../control/ng-server.js';
import { FULL_RESERVE } from '../../control/reply-cache.js';
import type { CommandContext } from '../../control/commands/context.js';
import { CallTable } from '../../daemon/session/call-table.js';
import { LocalCore } from '../../daemon/session/core.js';
import { callRecord } from '../../daemon/operations.js';
import { LocalMediaPlane } from '../../media/relay.js';
import { releasePages } from '../../media/native-addon.js';
import type { MediaPlane, OpenedPair, SocketStats } from '../../media/plane.js';
import { Metrics } from '../../admin/metrics.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: string): string => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1] ?? d;
const flag = (k: string): boolean => argv.includes(`--${k}`);
const CALLS = Number(opt('calls', '20000'));
const INFLIGHT = Number(opt('inflight', '16'));
const WARMUP = Math.min(3000, CALLS);

/** Sockets as numbers only: what is left is the session's and control's own work. */
class StubPlane implements MediaPlane {
  private next = 1;
  private port = 24000;
  private readonly live = new Set<number>();
  async openPair(address: string): Promise<OpenedPair> {
    const rtp = this.next++, rtcp = this.next++;
    this.live.add(rtp); this.live.add(rtcp);
    this.port = this.port >= 39990 ? 24000 : this.port + 2;
    return { rtp, rtcp, address, port: this.port };
  }
  install(): void { /* plans are the plane's business */ }
  close(ids: readonly number[]): void { for (const id of ids) this.live.delete(id); }
  stats(ids: readonly number[]): SocketStats[] {
    return ids.filter((id) => this.live.has(id)).map((id) => ({
      id, packets: 0, bytes: 0, errors: 0, dropped: 0, lastPacketMs: 0, remote: null, confirmed: false, ssrc: null, quality: null,
    } as unknown as SocketStats));
  }
  ports(): { address: string; free: number; total: number }[] { return [{ address: '127.0.0.1', free: 8000, total: 8000 }]; }
  onEvent(): void { /* none */ }
  async shutdown(): Promise<void> { /* nothing */ }
}

function sdp(ip: string, port: number, sessId: number): string {
  return `v=0\r\no=- ${sessId} ${sessId} IN IP4 ${ip}\r\ns=bench\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 8 101\r\n`
    + 'a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n'
    + `a=ptime:20\r\na=sendrecv\r\na=rtcp:${port + 1}\r\n`;
}

/** ngload's request, byte for byte in layout (keys in its order, which is sorted). */
function request(stage: 0 | 1 | 2, call: number, gen: number): Buffer {
  const s = (v: string): string => `${Buffer.byteLength(v)}:${v}`;
  const cid = `ngl-1-${call}@bench`;
  let d = `d${s('call-id')}${s(cid)}${s('command')}${s(['offer', 'answer', 'delete'][stage]!)}${s('from-tag')}${s(`ft${call}`)}`;
  if (stage < 2) {
    const body = sdp('127.0.0.1', 30000 + (call % 5000) * 4 + (stage === 1 ? 2 : 0), call * 2 + stage + 1000);
    d += `${s('ICE')}${s('remove')}${s('replace')}l${s('origin')}e${s('sdp')}${s(body)}`;
  }
  if (stage > 0) d += `${s('to-tag')}${s(`tt${call}`)}`;
  return Buffer.from(`${call % INFLIGHT}_${gen} ${d}e`);
}

async function main(): Promise<void> {
  let logBytes = 0;
  const sink = new Writable({ write(c: Buffer, _e, cb) { logBytes += c.length; cb(); } });
  const log = pino({ level: opt('log', 'info'), base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
  const clock = { nowMs: Date.now() };
  const tick = setInterval(() => { clock.nowMs = Date.now(); }, 250);
  const plane: MediaPlane = opt('plane', 'stub') === 'real'
    ? new LocalMediaPlane({ min: 4000, max: 19999 }, clock, ['127.0.0.1']) : new StubPlane();
  const table = new CallTable({
    interfaces: [{ name: 'default', addresses: [{ address: '127.0.0.1', advertised: '127.0.0.1', family: 4 }] }],
    timeouts: { timeoutS: 60, silentTimeoutS: 3600, finalTimeoutS: 0, offerTimeoutS: 3600, deleteDelayS: 0 },
    maxSessions: -1, sipSource: false,
  } as ConstructorParameters<typeof CallTable>[0], plane, log.child({ sub: 'session' }), clock);
  const records: unknown[] = [];
  if (flag('records')) table.onCallEnded((snap, reason) => { records.push(callRecord(snap, reason, Date.now())); if (records.length > 1000) records.length = 0; });
  const sweep = setInterval(() => table.sweep(Date.now()), 1000);
  const core = new LocalCore(table, () => plane.ports());
  const ctx: CommandContext = {
    table, core, log: log.child({ sub: 'control' }), startedMs: Date.now(), nowMs: () => Date.now(),
    stats: { byCommand: new Map(), byProxy: new Map() }, ports: () => plane.ports(),
  };
  if (flag('metrics')) {
    const metrics = new Metrics({
      table: core, instance: { state: 'active' } as never, ports: () => plane.ports(), commands: () => ctx.stats.byCommand, media: () => table.mediaTotals(),
      ngReplyCache: () => ng.replyCacheFigures(),
    });
    ctx.observe = (command, seconds) => metrics.observeNg(command, seconds);
  }
  // The reply cache's reserve as the daemon sets it aside (daemon/main.ts).
  const ng = new NgServer(ctx, log.child({ sub: 'control' }), { udp: [], tcp: [], replyCache: { reserveBytes: FULL_RESERVE, release: releasePages } });

  let failed = 0;
  const run = async (from: number, to: number): Promise<void> => {
    let next = from;
    const worker = async (w: number): Promise<void> => {
      let gen = 0;
      while (next < to) {
        const call = next++;
        for (const stage of [0, 1, 2] as const) {
          const reply = await ng.handle(request(stage, call, ++gen), `127.0.0.1:${40000 + w}`);
          if (!reply || !reply.includes('6:result2:ok')) failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: INFLIGHT }, (_, w) => worker(w)));
  };
  await run(0, WARMUP);
  const cpu0 = process.cpuUsage(), t0 = process.hrtime.bigint(), log0 = logBytes;
  await run(WARMUP, WARMUP + CALLS);
  const cpu = process.cpuUsage(cpu0), ns = Number(process.hrtime.bigint() - t0);
  const cmds = CALLS * 3;
  const us = (cpu.user + cpu.system) / cmds;
  process.stdout.write(`${cmds} commands, ${INFLIGHT} in flight, plane ${opt('plane', 'stub')}, log ${opt('log', 'info')}: `
    + `${us.toFixed(1)} us CPU per command (user ${(cpu.user / cmds).toFixed(1)}, system ${(cpu.system / cmds).toFixed(1)}), `
    + `${(cmds / (ns / 1e9)).toFixed(0)} commands/s in-process, log ${((logBytes - log0) / cmds).toFixed(0)} B/command, failed ${failed}\n`);
  clearInterval(tick); clearInterval(sweep);
  await ng.close();
  await plane.shutdown();
}

await main();
