// NG control transports (UDP, TCP) and the one place that decodes requests, runs handlers,
// catches their errors, encodes replies, answers retransmissions from the cache and counts.
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from 'pino';
import {
  decodeBencodeDict, decodeJsonDict, encodeBencode, encodeJson, FramingError, scanBencode, splitCookie, type NgDict,
} from './codec.js';
import { COMMANDS } from './commands/index.js';
import type { CommandContext } from './commands/context.js';
import { errorReply, NgError } from './errors.js';
import { Params, supportsLoadLimit } from './params.js';
import { ReplyCache } from './reply-cache.js';

export interface Endpoint { address: string; port: number }

export interface NgServerOptions {
  udp: readonly Endpoint[];
  tcp: readonly Endpoint[];
  /** Bytes of one incomplete TCP message before the connection is closed. */
  tcpMaxBuffer?: number;
  tcpIdleMs?: number;
}

const MAX_COOKIE = 256;

export class NgServer {
  private readonly cache = new ReplyCache();
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  /** Datagrams that got no reply (no cookie): counted, not answered. */
  dropped = 0;

  constructor(private readonly ctx: CommandContext, private readonly log: Logger, private readonly opts: NgServerOptions) {}

  async start(): Promise<{ udp: Endpoint[]; tcp: Endpoint[] }> {
    const udp: Endpoint[] = [];
    for (const ep of this.opts.udp) {
      const sock = dgram.createSocket({ type: ep.address.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 * 1024 * 1024 });
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(ep.port, ep.address, () => { sock.off('error', reject); resolve(); });
      });
      sock.on('error', (err) => this.log.warn({ err }, 'ng socket error'));
      sock.on('message', (msg, rinfo) => {
        const source = `${rinfo.address}:${rinfo.port}`;
        this.handle(msg, source).then((reply) => {
          if (reply) sock.send(reply, rinfo.port, rinfo.address);
        }, (err) => this.log.error({ err }, 'ng handling failed'));
      });
      this.udp.push(sock);
      const a = sock.address();
      udp.push({ address: a.address, port: a.port });
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

  /** One NG message in, its reply out (null: no cookie, no reply). Used by every transport. */
  async handle(msg: Buffer, source: string): Promise<Buffer | null> {
    const framed = splitCookie(msg);
    if (!framed) { this.dropped++; return null; }
    const key = ReplyCache.key(source, msg);
    const cached = this.cache.get(key);
    if (cached) return cached;
    const reply = this.execute(framed.payload, source).then((body) => Buffer.concat([framed.cookie, Buffer.from(' '), body]));
    this.cache.pending(key, reply);
    return reply;
  }

  private async execute(payload: Buffer, source: string): Promise<Buffer> {
    const json = payload[0] === 0x7b;
    const encode = json ? encodeJson : encodeBencode;
    const started = process.hrtime.bigint();
    let command = '(invalid)';
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
      const p = new Params(dict);
      const c = p.keys.get('command');
      if (typeof c !== 'string' && !Buffer.isBuffer(c)) throw new NgError('Dictionary contains no key "command"');
      command = c.toString();
      const handler = COMMANDS.get(command);
      if (!handler) { command = '(unknown)'; throw new NgError('Unrecognized command'); }
      loadLimit = supportsLoadLimit(p);
      if (this.log.isLevelEnabled('debug')) this.log.debug({ source, command, callId: p.str('call-id') }, 'ng request');
      reply = await handler(p, this.ctx);
    } catch (err) {
      reply = errorReply(err, this.log, loadLimit);
      if (reply.result === 'error') this.log.info({ source, command, reason: reply['error-reason'] }, 'ng error reply');
    }
    this.count(command, source, reply.result === 'error', Number(process.hrtime.bigint() - started) / 1000);
    return encode(reply);
  }

  private count(command: string, source: string, error: boolean, us: number): void {
    const s = this.ctx.stats;
    let c = s.byCommand.get(command);
    if (!c) { c = { count: 0, errors: 0, totalUs: 0, maxUs: 0 }; s.byCommand.set(command, c); }
    c.count++; c.totalUs += us; if (us > c.maxUs) c.maxUs = us; if (error) c.errors++;
    const host = source.replace(/:\d+$/, '');
    let p = s.byProxy.get(host);
    if (!p) {
      if (s.byProxy.size >= 1000) return; // hostile sources must not grow this without bound
      p = { count: 0, errors: 0 }; s.byProxy.set(host, p);
    }
    p.count++; if (error) p.errors++;
  }

  async close(): Promise<void> {
    this.cache.close();
    for (const s of this.udp) s.close();
    for (const c of this.conns) c.destroy();
    await Promise.all(this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** End of one JSON object starting at `start` (strings and escapes respected); -1 if incomplete. */
export function scanJson(buf: Buffer, start: number): number {
  let depth = 0, inStr = false;
  for (let i = start; i < buf.length; i++) {
    const c = buf[i]!;
    if (inStr) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inStr = false;
    } else if (c === 0x22) inStr = true;
    else if (c === 0x7b || c === 0x5b) { if (++depth > 64) throw new FramingError('nesting too deep'); }
    else if (c === 0x7d || c === 0x5d) { if (--depth === 0) return i + 1; }
  }
  return -1;
}
