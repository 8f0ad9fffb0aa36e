// A small NG client for tests: bencode over UDP, replies decoded to plain JS (strings, numbers).
import dgram from 'node:dgram';
import bencode from 'bencode';
import { encodeBencode, type NgValue } from '../../control/codec.js';

export type Plain = string | number | Plain[] | { [k: string]: Plain };

export function plain(v: unknown): Plain {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'number' || typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return String(v);
}

let seq = 0;

export class NgClient {
  private readonly sock = dgram.createSocket('udp4');
  private readonly waiting = new Map<string, (buf: Buffer) => void>();
  private ready: Promise<void>;

  constructor(readonly port: number, readonly host = '127.0.0.1') {
    this.ready = new Promise((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.sock.on('message', (msg) => {
      const sp = msg.indexOf(0x20);
      const cookie = msg.subarray(0, sp).toString();
      const w = this.waiting.get(cookie);
      if (w) { this.waiting.delete(cookie); w(msg.subarray(sp + 1)); }
    });
  }

  /** Sends raw bytes; resolves with the raw reply payload (after the cookie), or null on timeout. */
  async raw(payload: Buffer | string, cookie = `t${process.pid}_${++seq}`, timeoutMs = 3000): Promise<Buffer | null> {
    await this.ready;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting.delete(cookie); resolve(null); }, timeoutMs);
      this.waiting.set(cookie, (b) => { clearTimeout(timer); resolve(b); });
      this.sock.send(Buffer.concat([Buffer.from(cookie + ' '), Buffer.from(payload)]), this.port, this.host);
    });
  }

  /** Sends a command dict; resolves with the decoded reply. */
  async cmd(dict: Record<string, NgValue>): Promise<Record<string, Plain>> {
    const r = await this.raw(encodeBencode(dict));
    if (r === null) throw new Error(`no reply to ${String(dict.command)}`);
    return plain(bencode.decode(r)) as Record<string, Plain>;
  }

  close(): void { this.sock.close(); }
}
