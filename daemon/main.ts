#!/usr/bin/env node
// rtprelay's entry point: reads the configuration, starts the media plane, the session core and
// the control transports, and stops them in the reverse order on a signal.
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { callCapacity, planeSocketBudget, ConfigError, helpText, loadConfig, type Config } from './config/load.js';
import { createLogger } from './log.js';
import { CallTable } from './session/call-table.js';
import { LocalCore, type SessionCore } from './session/core.js';
import { CallThreads } from './call-threads.js';
import { LocalMediaPlane } from '../media/relay.js';
import { WorkerMediaPlane } from '../media/worker-plane.js';
import { udpIo, type NgRouting, type UdpIo } from '../media/udp.js';
import { nameThread, releasePages } from '../media/native-addon.js';
import type { MediaPlane } from '../media/plane.js';
import { createCertificate, type DtlsCertificate } from '../media/dtls/certificate.js';
import type { Logger } from 'pino';
import { NgServer } from '../control/ng-server.js';
import { addReplyCacheFigures, FULL_RESERVE } from '../control/reply-cache.js';
import type { CommandContext } from '../control/commands/context.js';
import { Operations } from './operations.js';
import { AdminServer } from '../admin/http.js';
import { Metrics } from '../admin/metrics.js';

export const VERSION = '0.1.0';

async function main(): Promise<void> {
  let cfg: Config;
  try {
    const c = loadConfig(process.argv.slice(2));
    if (c === 'help') { process.stdout.write(helpText() + '\n'); return; }
    if (c === 'version') { process.stdout.write(`rtprelay ${VERSION}\n`); return; }
    cfg = c;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`rtprelay: ${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  const log = createLogger(cfg.log);
  for (const w of cfg.warnings) log.warn(w);
  // ps, top and pgrep show "rtprelay" (the main thread's name is the process's), top -H the threads.
  nameThread('rtprelay');
  const fail = (msg: string, err?: unknown): void => {
    // Both: the operator may be looking at the terminal or at the log.
    process.stderr.write(`rtprelay: ${msg}\n`);
    log.fatal({ err }, msg);
    log.flush();
    setTimeout(() => process.exit(1), 100);
  };
  const addresses = cfg.interfaces.flatMap((i) => i.addresses.map((a) => a.address));
  for (const address of addresses) {
    const err = await canBind(address);
    if (err) return fail(`--interface ${address}: cannot bind (${err.code ?? err.message})`, err);
  }
  const clock = { nowMs: Date.now() };
  // The packet path reads a cached clock; a quarter second is plenty for one-second timeouts.
  const tick = setInterval(() => { clock.nowMs = Date.now(); }, 250);
  const files = raiseFileLimit(log);
  logCallCapacity(log, cfg, addresses.length, files);
  let io: UdpIo;
  try { io = udpIo(cfg.socketIo); } catch (e) { clearInterval(tick); return fail(`--socket-io ${cfg.socketIo}: ${(e as Error).message}`, e); }
  // Workers load the same layer in their own threads: the main thread's choice tells which one it is.
  log.info({ socketIo: io.kind }, io.kind === 'native' ? 'media sockets: native batched I/O' : 'media sockets: node:dgram');
  // Each media plane keeps freed ports' sockets bound a while (media/udp.ts, SocketPark).
  const socketPark = { ms: cfg.socketParkS * 1000, maxOpen: planeSocketBudget(cfg, addresses.length, files) };
  if (io.kind === 'native' && socketPark.ms > 0) {
    log.info({ seconds: cfg.socketParkS, socketsPerPlane: socketPark.maxOpen === Infinity ? null : socketPark.maxOpen },
      "freed ports' sockets stay bound for reuse (--socket-park)");
  }
  // The session core: in this thread (media in workers or here), or spread over call threads.
  let plane: MediaPlane | null = null;
  let threads: CallThreads | null = null;
  if (cfg.callThreads > 0) {
    try {
      threads = await CallThreads.start({
        range: cfg.ports, count: cfg.callThreads, addresses, socketIo: cfg.socketIo, socketPark, log: cfg.log,
        session: { interfaces: cfg.interfaces, timeouts: cfg.timeouts, maxSessions: threadShare(cfg.maxSessions, cfg.callThreads), sipSource: cfg.sipSource, recording: cfg.recording },
        onNotice: (msg, fields) => (msg === 'call thread restarted' ? log.info(fields, msg) : log.error(fields, msg)),
      });
      if (cfg.testHooks) process.on('SIGUSR2', () => threads!.crashThread(0));
      log.info({ threads: threads.threadCount }, 'call threads started');
    } catch (e) {
      clearInterval(tick);
      return fail(`cannot start call threads: ${(e as Error).message}`, e);
    }
  } else if (cfg.mediaWorkers > 0) {
    try {
      const wp = await WorkerMediaPlane.start(cfg.ports, cfg.mediaWorkers, addresses, {
        socketIo: cfg.socketIo, socketPark,
        onNotice: (msg, fields) => (msg === 'media worker restarted' ? log.info(fields, msg) : log.error(fields, msg)),
      });
      if (cfg.testHooks) process.on('SIGUSR2', () => wp.crashWorker(0));
      log.info({ workers: wp.workerCount }, 'media workers started');
      plane = wp;
    } catch (e) {
      clearInterval(tick);
      return fail(`cannot start media workers: ${(e as Error).message}`, e);
    }
  } else {
    io.setParking?.(socketPark.ms, socketPark.maxOpen);
    plane = new LocalMediaPlane(cfg.ports, clock, addresses, { io });
  }
  // DTLS certificate (WebRTC): made in the background, so NG is served at once; until it exists
  // the session offers no DTLS (fingerprint() gives null).
  let certificate: DtlsCertificate | null = null;
  createCertificate().then((c) => {
    certificate = c;
    plane?.setCertificate?.({ certPem: c.certPem, keyPem: c.keyPem });
    threads?.setCertificate({ certPem: c.certPem, keyPem: c.keyPem, fingerprints: { ...c.fingerprints } as Record<string, string> });
    log.info({ fingerprint: c.fingerprints['sha-256'] }, 'DTLS certificate ready');
  }, (e: Error) => log.error({ err: e.message }, 'no DTLS certificate: DTLS-SRTP disabled'));
  const fingerprint = (hash: string): string | null =>
    certificate === null ? null : (certificate.fingerprints as Record<string, string | undefined>)[hash.toLowerCase()] ?? null;
  let table: CallTable | null = null;
  let core: SessionCore;
  let sweep: NodeJS.Timeout | undefined;
  if (plane !== null) {
    const p = plane;
    const t = new CallTable({ ...cfg, fingerprint }, p, log.child({ sub: 'session' }), clock);
    table = t;
    core = new LocalCore(t, () => p.ports());
    // A tenth of the calls every 100 ms: each call is checked once a second, no tick stalls NG for a whole pass.
    sweep = setInterval(() => t.sweepPart(Date.now(), 10), 100);
  } else {
    core = threads!;
  }
  const ctx: CommandContext = {
    table, core, log: log.child({ sub: 'control' }), startedMs: Date.now(), nowMs: () => Date.now(),
    stats: { byCommand: new Map(), byProxy: new Map() },
    ports: () => core.ports(),
  };
  // The NG sockets use the same socket layer as the media (native batched I/O when built).
  // Replies wait for the socket thread only when this thread relays the media too (ng-server.ts's queueReply).
  // The reply cache's slabs are set aside now where commands run here (with call threads each
  // thread caches its own): see reply-cache.ts's SlabPool.
  const ng = new NgServer(ctx, log.child({ sub: 'control' }), {
    udp: cfg.listenNg, tcp: cfg.listenTcpNg, udpIo: io, forward: threads ?? undefined, replyNow: !(plane instanceof LocalMediaPlane),
    replyCache: threads ? undefined : { reserveBytes: FULL_RESERVE, release: releasePages },
  });
  let bound;
  try {
    bound = await ng.start();
  } catch (e) {
    clearInterval(sweep);
    clearInterval(tick);
    return fail(`cannot open control sockets: ${(e as Error).message}`, e);
  }
  let handover: NgRouting | null = null;
  if (threads !== null && io.ngRouting) {
    // Commands over UDP go from the native reader straight to their call thread (no decode and no
    // postMessage here); the threads count them back to this server's statistics.
    const routing = io.ngRouting;
    const t = threads;
    t.onNgCount((command, source, error, us) => ng.countHandedOver(command, source, error, us));
    const routed = ng.udpSockets().map((sock) => routing.route(sock, t.threadCount)).filter((r) => r !== false);
    if (routed.length > 0) {
      t.handOverNg(routed);
      handover = routing;
      log.info({ sockets: routed.length }, 'ng over udp: commands go from the socket straight to their call thread');
    }
  }
  for (const ep of bound.udp) log.info({ transport: 'udp', address: ep.address, port: ep.port }, 'ng listening');
  for (const ep of bound.tcp) log.info({ transport: 'tcp', address: ep.address, port: ep.port }, 'ng listening');
  if (cfg.pidfile) {
    try { writeFileSync(cfg.pidfile, `${process.pid}\n`); } catch (e) {
      await ng.close();
      clearInterval(sweep);
      clearInterval(tick);
      return fail(`cannot write --pidfile ${cfg.pidfile}: ${(e as Error).message}`, e);
    }
  }
  // Operations start after NG is open, and nothing in them waits for the database.
  const ngUrl = cfg.operations.instanceUrl ?? (bound.udp[0]
    ? `udp:${bound.udp[0].address === '0.0.0.0' ? cfg.interfaces[0]!.addresses[0]!.address : bound.udp[0].address}:${bound.udp[0].port}`
    : 'udp:127.0.0.1:2223');
  const ops = new Operations({ ...cfg.operations, instanceUrl: ngUrl, stateDir: cfg.stateDir, version: VERSION }, { table: core, log });
  const metrics = new Metrics({
    table: core, instance: ops.instance, ports: () => core.ports(), commands: () => ctx.stats.byCommand, media: () => core.mediaTotals(),
    ...(handover ? { ngHandover: () => handover.stats() } : {}),
    ngReplyCache: () => {
      const all = ng.replyCacheFigures();
      if (threads) addReplyCacheFigures(all, threads.replyCacheFigures());
      return all;
    },
  });
  ctx.observe = (command, seconds) => metrics.observeNg(command, seconds);
  ops.start();
  let admin: AdminServer | null = null;
  try {
    admin = await startAdmin(cfg, ops, metrics, core, (msg, source) => ng.handle(msg, source), log);
  } catch (e) {
    await ng.close();
    await ops.close();
    clearInterval(sweep);
    clearInterval(tick);
    return fail(`cannot start the admin interface: ${(e as Error).message}`, e);
  }
  log.info({ version: VERSION, interfaces: cfg.interfaces, ports: cfg.ports, instance: ngUrl, state: ops.instance.state }, 'rtprelay started');

  // SIGTERM drains (no new calls; running calls go on up to --shutdown-timeout); SIGINT, or a
  // second signal, stops at once. Either way the sockets close in order and the exit code is 0.
  let stopping = false;
  let abortDrain: () => void = () => undefined;
  const aborted = new Promise<void>((r) => { abortDrain = r; });
  const stop = async (signal: string): Promise<void> => {
    log.info({ signal }, 'shutting down');
    // Whatever hangs below (a database that never answers a close), the process ends.
    setTimeout(() => process.exit(0), 5000).unref();
    clearInterval(sweep);
    clearInterval(tick);
    await ng.close();
    await admin?.close();
    await ops.close();
    await core.destroyAll('shutdown');
    await plane?.shutdown();
    await threads?.shutdown();
    if (cfg.pidfile) try { unlinkSync(cfg.pidfile); } catch { /* already gone */ }
    log.flush();
    setTimeout(() => process.exit(0), 50).unref();
  };
  const onSignal = (signal: string): void => {
    if (stopping) { abortDrain(); return; }
    stopping = true;
    if (signal === 'SIGINT') { void stop(signal); return; }
    log.info({ signal, calls: core.totals().current, timeoutS: cfg.operations.shutdownTimeoutS }, 'draining before shutdown');
    void ops.drainForShutdown(aborted).then((how) => {
      log.info({ how }, 'drain finished');
      return stop(signal);
    });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

/** The soft and hard open-file limits (/proc/self/limits), or null where there is no /proc. */
function fileLimits(): { soft: number; hard: number } | null {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return null;
    const n = (v: string): number => (v === 'unlimited' ? Infinity : Number(v));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch { return null; }
}

/**
 * Node cannot call setrlimit; prlimit(1) can raise our own soft open-file limit up to the hard one
 * (no privilege needed for that). Returns the soft limit in force afterwards.
 */
function raiseFileLimit(log: Logger): number | null {
  const before = fileLimits();
  if (!before) return null;
  if (before.soft < before.hard) {
    const to = before.hard === Infinity ? 'unlimited' : String(before.hard);
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${to}:${to}`], { stdio: 'ignore', timeout: 2000 });
    } catch { /* no prlimit: keep the soft limit, reported below */ }
  }
  const after = fileLimits() ?? before;
  log.info({ soft: before.soft, hard: before.hard, now: after.soft }, after.soft > before.soft ? 'open-file limit raised' : 'open-file limit');
  return after.soft;
}

/** Says which of the port range and the open-file limit caps the number of calls (4 sockets per audio call). */
function logCallCapacity(log: Logger, cfg: Config, addressCount: number, fileLimit: number | null): void {
  const { byPorts, byFiles } = callCapacity(cfg, addressCount, fileLimit);
  const cap = byFiles < byPorts ? 'open-file limit' : 'port range';
  const fields = { byPorts, byFiles: byFiles === Infinity ? null : byFiles, cap };
  if (byFiles < byPorts) log.warn(fields, 'the open-file limit, not the port range, caps the number of calls (raise ulimit -n / LimitNOFILE)');
  else log.info(fields, 'the port range caps the number of calls');
}

/** A thread's share of --max-sessions (-1: no limit): calls spread evenly over threads by call-id. */
function threadShare(maxSessions: number, threads: number): number {
  return maxSessions < 0 ? maxSessions : Math.ceil(maxSessions / threads);
}

const isLoopback = (a: string): boolean => a.startsWith('127.') || a === '::1';

/** The HTTP admin surface (--listen-http): NG over HTTP/WebSocket, JSON API, metrics, dashboard. */
async function startAdmin(
  cfg: Config, ops: Operations, metrics: Metrics, table: SessionCore,
  handleNg: (msg: Buffer, source: string) => Promise<Buffer | null>, log: Logger,
): Promise<AdminServer | null> {
  if (!cfg.listenHttp.length) return null;
  const token = cfg.operations.httpToken;
  if (cfg.listenHttp.some((e) => !isLoopback(e.address)) && !token) throw new Error('--listen-http off loopback needs --http-token');
  const store = ops.store;
  const admin = new AdminServer({
    handleNg, table, instance: ops.instance, metrics, log: log.child({ sub: 'http' }), token, history: () => ops.history,
    instances: store ? {
      list: () => store.instances(),
      add: (url, setid, weight) => store.addInstance(url, setid, weight),
      remove: (url) => store.removeInstance(url),
    } : undefined,
    reloadKamailio: cfg.operations.kamailioRpcUrl ? () => ops.reloadKamailio() : undefined,
    recordings: store ? { list: (callId) => store.recordings(callId), byId: (id) => store.recordingById(id) } : undefined,
  });
  for (const ep of await admin.listen(cfg.listenHttp)) log.info({ transport: 'http', address: ep.address, port: ep.port }, 'http listening');
  return admin;
}

/** Whether a media socket can be bound on `address` (it is local): null, or the error. */
function canBind(address: string): Promise<NodeJS.ErrnoException | null> {
  const sock = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  return new Promise((resolve) => {
    sock.once('error', (e) => { sock.close(); resolve(e); });
    sock.bind(0, address, () => sock.close(() => resolve(null)));
  });
}

void main();
