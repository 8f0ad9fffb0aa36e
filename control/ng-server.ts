// NG control transports (UDP, TCP) and the one place that decodes requests, runs handlers,
// catches their errors, encodes replies, answers retransmissions from the cache and counts.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  decodeBencodeDict, decodeJsonDict, encodeBencode, encodeJson, FramingError, scanBencode, scanJson, splitCookie, type NgDict,
} from './codec.js';
import { COMMANDS } from './commands/index.js';
import type { CommandContext, CommandCounter } from './commands/context.js';
import { errorReply, NgError, REPLY_TOO_LARGE } from './errors.js';
import { Params, supportsLoadLimit } from './params.js';
import { ReplyCache, type ReplyCacheFigures, type ReplyCacheMemory } from './reply-cache.js';

export interface Endpoint { address: string; port: number }

export interface NgServerOptions {
  udp: readonly Endpoint[];
  tcp: readonly Endpoint[];
  /** Bytes of one incomplete TCP message before the connection is closed. */
  tcpMaxBuffer?: number;
  tcpIdleMs?: number;
  /**
   * The UDP socket layer of the NG sockets: daemon/main.ts passes the media plane's (native
   * batched I/O when built, else node:dgram). Needed only when `udp` lists endpoints.
   */
  udpIo?: NgUdpIo;
  /**
   * Call threads (daemon/call-threads.ts): every command but `ping`, `list` and `statistics` goes
   * to the thread that holds its call (by call-id), which answers it from its own NgServer
   * (`handleRouted`); this server only counts it. Absent: every command runs here.
   */
  forward?: Forwarder;
  /**
   * In a call thread: each command it answered from a datagram the main thread's native reader
   * handed it straight (adoptUdp), which the main thread never saw, to be counted there.
   */
  onCount?: (command: string | null, source: string, error: boolean, us: number) => void;
  /**
   * UDP replies leave at once from this thread (sendto as each command finishes) instead of being
   * queued for the native socket layer's socket thread (sendSoon). See queueReply() for when each
   * pays; daemon/main.ts and daemon/call-thread.ts choose.
   */
  replyNow?: boolean;
  /**
   * The reply cache's slab memory (reply-cache.ts): a reserve allocated at the start, and how a
   * slab's pages are given back. Absent: slabs are allocated as they are needed.
   */
  replyCache?: ReplyCacheMemory;
}

/** Where routed commands go; the reply comes back with whether it was an error or a cached one. */
export interface Forwarder {
  send(callId: string, msg: Buffer, source: string): Promise<RoutedReply>;
}

export interface RoutedReply { reply: Buffer; error: boolean; cached: boolean }

/** Commands about the whole instance: they run where the NG sockets are. */
const LOCAL_COMMANDS = new Set(['ping', 'list', 'statistics']);

/** What the NG server needs of a UDP socket layer (media/udp.ts's UdpIo has this shape). */
export interface NgUdpIo {
  /** Handlers get a view valid only during the call. */
  readonly borrowedBuffers: boolean;
  bind(address: string, port: number, onPacket: (buf: Buffer, address: string, port: number) => void, onError: () => void,
    opts?: { recvBufferSize?: number }): Promise<NgUdpSocket>;
}

export interface NgUdpSocket {
  send(buf: Buffer, port: number, address: string): void;
  /** Sent after this event-loop turn by another thread (media/udp.ts's native sockets; `buf` copied). */
  sendSoon?(buf: Buffer, port: number, address: string): void;
  close(): Promise<void>;
  localPort(): number;
}

const NG_RECV_BUFFER = 4 * 1024 * 1024;

const MAX_COOKIE = 256;
const MAX_PROXIES = 1000;
/** IPv4 UDP payload limit. */
const MAX_DATAGRAM = 65507;
const SPACE = Buffer.from(' ');

/** `tcp:ADDR:PORT` or `ADDR:PORT` → ADDR (the per-proxy counters' key); anything else as it is. */
function hostOf(source: string): string {
  const from = source.startsWith('tcp:') ? 4 : 0;
  const colon = source.lastIndexOf(':');
  if (colon < from || colon === source.length - 1) return from ? source.slice(from) : source;
  for (let i = colon + 1; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return from ? source.slice(from) : source;
  }
  return source.slice(from, colon);
}

function bump(m: Map<string, CommandCounter>, command: string, error: boolean, us: number): void {
  let c = m.get(command);
  if (!c) { c = { count: 0, errors: 0, totalUs: 0, maxUs: 0 }; m.set(command, c); }
  c.count++; c.totalUs += us; if (us > c.maxUs) c.maxUs = us; if (error) c.errors++;
}

interface Route { callId: string; command: string | null }

/**
 * Which call thread a command goes to: null for the instance-wide commands and for a payload that
 * does not decode (those run in the main thread, which answers the error); a command without a
 * call-id goes too (its thread gives rtpengine's error for it), under the call-id ''.
 */
function routeOf(payload: Buffer): Route | null {
  let dict: NgDict;
  try {
    if (payload.length === 0) return null;
    dict = payload[0] === 0x7b ? decodeJsonDict(payload) : decodeBencodeDict(payload);
  } catch {
    return null;
  }
  const c = Object.hasOwn(dict, 'command') ? dict['command'] : undefined;
  if (typeof c !== 'string' && !Buffer.isBuffer(c)) return null;
  const command = c.toString();
  if (LOCAL_COMMANDS.has(command)) return null;
  return { callId: new Params(dict).str('call-id') ?? '', command: COMMANDS.has(command) ? command : null };
}

export class NgServer {
  private readonly cache: ReplyCache;
  private readonly udp: NgUdpSocket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  /** Datagrams that got no reply (no cookie): counted, not answered. */
  dropped = 0;

  constructor(private readonly ctx: CommandContext, private readonly log: Logger, private readonly opts: NgServerOptions) {
    this.cache = new ReplyCache(opts.replyCache);
  }

  async start(): Promise<{ udp: Endpoint[]; tcp: Endpoint[] }> {
    const udp: Endpoint[] = [];
    const io = this.opts.udpIo;
    if (this.opts.udp.length > 0 && !io) throw new Error('NG over UDP needs a socket layer (udpIo)');
    for (const ep of this.opts.udp) {
      const sock = await this.serveUdp(io!.borrowedBuffers, false, (onPacket, onError) =>
        io!.bind(ep.address, ep.port, onPacket, onError, { recvBufferSize: NG_RECV_BUFFER }));
      udp.push({ address: ep.address, port: sock.localPort() });
    }
    const tcp: Endpoint[] = [];
    for (const ep of this.opts.tcp) {
      const srv = net.createServer((c) => this.onConnection(c));
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(ep.port, ep.address, () => { srv.off('error', reject); resolve(); });
      });
      this.tcp.push(srv);
      const a = srv.address() as net.AddressInfo;
      tcp.push({ address: a.address, port: a.port });
    }
    return { udp, tcp };
  }

  /** What this server's reply cache holds (with call threads, each thread's server has its own). */
  replyCacheFigures(): ReplyCacheFigures { return this.cache.figures(); }

  /** The UDP sockets start() bound (the main thread hands their commands to call threads natively). */
  udpSockets(): readonly NgUdpSocket[] { return this.udp; }

  /**
   * In a call thread: answers the commands the main thread's native reader hands this thread from
   * an NG socket it owns (media/udp.ts NgRouting.adopt), on that socket, counted through onCount.
   */
  async adoptUdp(adopt: (onPacket: (buf: Buffer, address: string, port: number) => void, onError: () => void) => NgUdpSocket): Promise<void> {
    await this.serveUdp(true, true, (onPacket, onError) => Promise.resolve(adopt(onPacket, onError)));
  }

  private async serveUdp(borrowed: boolean, handedOver: boolean,
    open: (onPacket: (buf: Buffer, address: string, port: number) => void, onError: () => void) => Promise<NgUdpSocket>): Promise<NgUdpSocket> {
    let sock: NgUdpSocket | null = null;
    sock = await open((msg, address, port) => {
      // The command runs on past this call (it awaits the session): a borrowed view is copied.
      if (sock !== null) this.onDatagram(sock, borrowed ? Buffer.from(msg) : msg, address, port, handedOver);
    }, () => this.log.debug('ng reply not sent'));
    this.udp.push(sock);
    return sock;
  }

  /** TCP framing as rtpengine has it: cookie, space, one complete bencoded (or JSON) value; no length prefix. */
  private onConnection(c: net.Socket): void {
    const source = `tcp:${c.remoteAddress}:${c.remotePort}`;
    const maxBuffer = this.opts.tcpMaxBuffer ?? 1024 * 1024;
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    this.conns.add(c);
    c.setTimeout(this.opts.tcpIdleMs ?? 5 * 60_000, () => c.destroy());
    c.on('close', () => this.conns.delete(c));
    c.on('error', () => c.destroy());
    c.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp < 0) { if (buf.length > MAX_COOKIE) return void c.destroy(); break; }
        if (sp === 0 || sp > MAX_COOKIE) return void c.destroy();
        let end: number;
        try {
          end = buf[sp + 1] === 0x7b ? scanJson(buf, sp + 1) : scanBencode(buf, sp + 1);
        } catch {
          return void c.destroy();
        }
        if (end < 0) { if (buf.length > maxBuffer) return void c.destroy(); break; }
        const msg = buf.subarray(0, end);
        buf = buf.subarray(end);
        chain = chain.then(async () => {
          const reply = await this.handle(Buffer.from(msg), source);
          if (reply && !c.destroyed) c.write(reply);
        }).catch((err) => this.log.error({ err }, 'ng tcp handling failed'));
      }
    });
  }

  /** One UDP request: a reply that is ready (a cached one) is queued at once, without a promise. */
  private onDatagram(sock: NgUdpSocket, msg: Buffer, address: string, port: number, handedOver = false): void {
    const source = `${address}:${port}`;
    let reply: Buffer | Promise<Buffer> | null;
    try {
      reply = this.dispatch(msg, source, handedOver);
    } catch (err) {
      this.log.error({ err }, 'ng handling failed');
      return;
    }
    if (reply === null) return;
    if (Buffer.isBuffer(reply)) { this.queueReply(sock, this.fitDatagram(reply, source), port, address); return; }
    reply.then((r) => { this.queueReply(sock, this.fitDatagram(r, source), port, address); }, (err) => this.log.error({ err }, 'ng handling failed'));
  }

  /**
   * Replies go out together once the requests read in this turn of the event loop are done
   * (setImmediate runs after the poll phase and its microtasks). Each send to a proxy that sleeps
   * in recv wakes it, which on loopback is most of sendto's kernel time (sock_def_readable, ~13 %
   * of the daemon's CPU under ngload): sent back to back, the later ones find it awake, and its
   * next requests come in a batch too. Only the commands of one turn wait, and only for each other.
   */
  private queueReply(sock: NgUdpSocket, buf: Buffer, port: number, address: string): void {
    // With the native socket layer the reply leaves now, or from its socket thread after this turn
    // together with the turn's other replies (sendSoon: the send's kernel time, most of it the
    // wake-up of the proxy, leaves this thread). sendSoon pays where one JavaScript thread runs
    // control and media alone and is the bottleneck (in-process: 19,400-20,900 commands/s against
    // 17,000-18,400 sending at once). With media workers or call threads it does not: the socket
    // thread is woken for the replies alone, which costs more than the sendto, and the reply waits
    // for the end of the turn and the wake-up, so the proxy's next command comes later (ngload,
    // alternating runs against sendSoon, tenth session: one media worker 17,600-18,240 ->
    // 19,250-20,280 commands/s and 75-80 -> 71-75 us of CPU a command; two call threads
    // 18,180-19,560 -> 18,950-20,320). A reply sent now still follows the media worker's message
    // with the command's plans: that was queued as a microtask when the plans were posted, before
    // the command's promise settled.
    if (sock.sendSoon) {
      try {
        if (this.opts.replyNow) sock.send(buf, port, address);
        else sock.sendSoon(buf, port, address);
      } catch (err) { this.log.debug({ err }, 'ng reply not sent'); }
      return;
    }
    this.outbox.push({ sock, buf, port, address });
    if (this.outbox.length === 1) setImmediate(this.flushReplies);
  }

  private readonly outbox: { sock: NgUdpSocket; buf: Buffer; port: number; address: string }[] = [];

  private readonly flushReplies = (): void => {
    const out = this.outbox.splice(0);
    for (const r of out) {
      // Throws only on a closed socket (shutdown): nothing to answer on any more.
      try { r.sock.send(r.buf, r.port, r.address); } catch (err) { this.log.debug({ err }, 'ng reply not sent'); }
    }
  };

  /**
   * A reply too big for one datagram (a `query` of a call with huge labels, say) would vanish with
   * EMSGSIZE and leave the proxy retransmitting; it gets an error it can act on instead. TCP and
   * the cache keep the full reply.
   */
  private fitDatagram(reply: Buffer, source: string): Buffer {
    if (reply.length <= MAX_DATAGRAM) return reply;
    const sp = reply.indexOf(0x20);
    const body: NgDict = { result: 'error', 'error-reason': REPLY_TOO_LARGE };
    this.log.warn({ source, bytes: reply.length }, 'ng reply too large for UDP');
    return Buffer.concat([reply.subarray(0, sp + 1), reply[sp + 1] === 0x7b ? encodeJson(body) : encodeBencode(body)]);
  }

  /** One NG message in, its reply out (null: no cookie, no reply). Used by every transport. */
  async handle(msg: Buffer, source: string): Promise<Buffer | null> {
    return this.dispatch(msg, source);
  }

  /**
   * In a call thread: one message the main thread routed here. The reply says whether it was an
   * error and whether it came from the reply cache (the main thread counts only fresh replies).
   */
  handleRouted(msg: Buffer, source: string): Promise<RoutedReply> | RoutedReply | null {
    this.lastCached = false;
    const reply = this.dispatch(msg, source);
    if (reply === null) return null;
    const cached = this.lastCached;
    if (Buffer.isBuffer(reply)) return { reply, error: this.errorReplies.has(reply), cached };
    return reply.then((r) => ({ reply: r, error: this.errorReplies.has(r), cached }));
  }

  /** Whether the last dispatch() answered from the cache (read right after it, synchronously). */
  private lastCached = false;
  /** Error replies of this server (handleRouted tells the main thread, which counts them). */
  private readonly errorReplies = new WeakSet<Buffer>();

  /** `handle` without the promise where none is needed (no cookie, or a cached reply). */
  private dispatch(msg: Buffer, source: string, handedOver = false): Buffer | Promise<Buffer> | null {
    const framed = splitCookie(msg);
    if (!framed) { this.dropped++; return null; }
    if (this.opts.forward) {
      const route = routeOf(framed.payload);
      if (route !== null) return this.forwardCommand(this.opts.forward, route, msg, source);
    }
    const key = ReplyCache.key(source, msg);
    const cached = this.cache.get(key);
    if (cached) { this.lastCached = true; return cached; }
    const reply = this.execute(framed.cookie, framed.payload, source, handedOver);
    this.cache.pending(key, reply);
    return reply;
  }

  /** A command for a call thread: it answers (and caches); this server counts, timed from here. */
  private async forwardCommand(fwd: Forwarder, route: Route, msg: Buffer, source: string): Promise<Buffer> {
    const started = performance.now();
    const r = await fwd.send(route.callId, msg, source);
    if (!r.cached) this.count(route.command, source, r.error, (performance.now() - started) * 1000);
    return r.reply;
  }

  /** Runs one command; the reply comes back framed with the request's cookie. */
  private async execute(cookie: Buffer, payload: Buffer, source: string, handedOver: boolean): Promise<Buffer> {
    const json = payload[0] === 0x7b;
    const started = performance.now();
    let command: string | null = null;
    let reply: NgDict;
    let loadLimit = false;
    try {
      if (payload.length === 0) throw new NgError('Invalid data (no payload)');
      let dict: NgDict;
      try {
        dict = json ? decodeJsonDict(payload) : decodeBencodeDict(payload);
      } catch (e) {
        throw e instanceof FramingError ? new NgError(e.reason) : e;
      }
      // The exact key, as rtpengine looks it up (not one of the aliases params.ts accepts).
      const c = Object.hasOwn(dict, 'command') ? dict['command'] : undefined;
      if (typeof c !== 'string' && !Buffer.isBuffer(c)) throw new NgError('Dictionary contains no key "command"');
      const handler = COMMANDS.get(c.toString());
      if (!handler) throw new NgError('Unrecognized command');
      command = c.toString();
      const p = new Params(dict);
      loadLimit = supportsLoadLimit(p);
      if (this.log.isLevelEnabled('debug')) this.log.debug({ source, command, callId: p.str('call-id') }, 'ng request');
      reply = await handler(p, this.ctx);
    } catch (err) {
      reply = errorReply(err, this.log, loadLimit);
      // A malformed request is the peer's problem and may come in floods: keep it out of the info log.
      if (reply.result === 'error') {
        this.log[command === null ? 'debug' : 'info']({ source, command, reason: reply['error-reason'] }, 'ng error reply');
      }
    }
    const error = reply.result === 'error';
    const us = (performance.now() - started) * 1000;
    if (handedOver && this.opts.onCount) this.opts.onCount(command, source, error, us);
    else this.count(command, source, error, us);
    const out = json ? Buffer.concat([cookie, SPACE, encodeJson(reply)]) : encodeBencode(reply, cookie);
    if (error) this.errorReplies.add(out);
    return out;
  }

  /** A command a call thread answered from a datagram handed to it natively (see onCount). */
  countHandedOver(command: string | null, source: string, error: boolean, us: number): void {
    this.count(command, source, error, us);
  }

  /** Counts one reply; `command` is null for requests that named no known command. */
  private count(command: string | null, source: string, error: boolean, us: number): void {
    const s = this.ctx.stats;
    if (command !== null) { bump(s.byCommand, command, error, us); this.ctx.observe?.(command, us / 1e6); }
    const host = hostOf(source);
    let p = s.byProxy.get(host);
    if (!p) {
      if (s.byProxy.size >= MAX_PROXIES) return; // hostile sources must not grow this without bound
      p = { count: 0, errors: 0, commands: new Map() }; s.byProxy.set(host, p);
    }
    p.count++; if (error) p.errors++;
    if (command !== null) bump(p.commands ??= new Map(), command, error, us);
  }

  async close(): Promise<void> {
    this.cache.close();
    for (const s of this.udp) void s.close();
    for (const c of this.conns) c.destroy();
    await Promise.all(this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
