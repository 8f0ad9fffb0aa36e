// Real UDP peers on 127.0.0.1 playing phones, and RTP/SDP builders for tests.
import dgram from 'node:dgram';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';

export interface Peer {
  sock: dgram.Socket;
  port: number;
  address: string;
  /** Next datagram (with its source), or null after `timeoutMs`. */
  recv(timeoutMs?: number): Promise<{ msg: Buffer; from: { address: string; port: number } } | null>;
  send(buf: Buffer, port: number, address?: string): Promise<void>;
  drain(): void;
  close(): void;
}

export async function udpPeer(t: TestContext | null, address = '127.0.0.1', port = 0): Promise<Peer> {
  const sock = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(port, address, () => r()));
  const queue: { msg: Buffer; from: { address: string; port: number } }[] = [];
  const waiters: ((v: { msg: Buffer; from: { address: string; port: number } }) => void)[] = [];
  sock.on('message', (msg, rinfo) => {
    const item = { msg, from: { address: rinfo.address, port: rinfo.port } };
    const w = waiters.shift();
    if (w) w(item); else queue.push(item);
  });
  const peer: Peer = {
    sock, port: sock.address().port, address,
    recv(timeoutMs = 1000) {
      const q = queue.shift();
      if (q) return Promise.resolve(q);
      return new Promise((resolve) => {
        const w = (v: { msg: Buffer; from: { address: string; port: number } }): void => { clearTimeout(timer); resolve(v); };
        const timer = setTimeout(() => { const i = waiters.indexOf(w); if (i >= 0) waiters.splice(i, 1); resolve(null); }, timeoutMs);
        waiters.push(w);
      });
    },
    send(buf, p, a = address) { return new Promise((r) => sock.send(buf, p, a, () => r())); },
    drain() { queue.length = 0; },
    close() { try { sock.close(); } catch { /* closed */ } },
  };
  t?.after(() => peer.close());
  return peer;
}

/** Two bound sockets on consecutive ports (RTP even, RTCP odd), like a phone. */
export async function phone(t: TestContext | null, address = '127.0.0.1'): Promise<{ rtp: Peer; rtcp: Peer }> {
  for (let i = 0; i < 50; i++) {
    const base = 40000 + 2 * Math.floor(Math.random() * 4000);
    try {
      const rtp = await udpPeerStrict(address, base);
      try {
        const rtcp = await udpPeerStrict(address, base + 1);
        t?.after(() => { rtp.close(); rtcp.close(); });
        return { rtp, rtcp };
      } catch { rtp.close(); }
    } catch { /* taken, try another */ }
  }
  throw new Error('no free port pair for a test phone');
}

async function udpPeerStrict(address: string, port: number): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    s.once('error', (e) => { s.close(); reject(e); });
    s.bind({ port, address, exclusive: true }, () => { s.close(() => udpPeer(null, address, port).then(resolve, reject)); });
  });
}

export function rtp(o: { ssrc?: number; seq?: number; ts?: number; pt?: number; payload?: Buffer; marker?: boolean } = {}): Buffer {
  const payload = o.payload ?? Buffer.alloc(160, 0xd5);
  const b = Buffer.alloc(12 + payload.length);
  b[0] = 0x80;
  b[1] = (o.pt ?? 0) | (o.marker ? 0x80 : 0);
  b.writeUInt16BE((o.seq ?? 1) & 0xffff, 2);
  b.writeUInt32BE((o.ts ?? 0) >>> 0, 4);
  b.writeUInt32BE((o.ssrc ?? 0x11223344) >>> 0, 8);
  payload.copy(b, 12);
  return b;
}

/** A minimal RTCP receiver report (RFC 3550 6.4.2) with no report blocks. */
export function rtcpRR(ssrc = 0x11223344): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 0x80; b[1] = 201; b.writeUInt16BE(1, 2); b.writeUInt32BE(ssrc, 4);
  return b;
}

export function sdp(o: { address?: string; port: number; pts?: number[]; extra?: string[]; origin?: string; session?: string[] }): string {
  const addr = o.address ?? '127.0.0.1';
  const ip = addr.includes(':') ? 'IP6' : 'IP4';
  const pts = o.pts ?? [0, 8];
  return [
    'v=0', `o=${o.origin ?? 'test'} 1 1 IN ${ip} ${addr}`, 's=-', `c=IN ${ip} ${addr}`, 't=0 0', ...(o.session ?? []),
    `m=audio ${o.port} RTP/AVP ${pts.join(' ')}`, ...(o.extra ?? []), '',
  ].join('\r\n');
}

/** The port and address of the n-th media section of an SDP body. */
export function mediaPort(body: string, n = 0): number {
  const m = [...body.matchAll(/^m=\S+ (\d+)/gm)][n];
  if (!m) throw new Error('no m= line');
  return Number(m[1]);
}

export function connAddress(body: string): string {
  const m = /^c=IN IP[46] (\S+)/m.exec(body);
  if (!m) throw new Error('no c= line');
  return m[1]!;
}

/** What placing a call needs of an NG client (test/support/ng-client.ts's NgClient). */
interface Ng { cmd(dict: Record<string, string | number>): Promise<Record<string, unknown>> }

/** Two phones and an offer/answer between them: where each must send to reach the other. */
export async function twoPartyCall(t: TestContext, ng: Ng, callId: string) {
  const a = await phone(t), b = await phone(t);
  const offer = await ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const answer = await ng.cmd({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: b.rtp.port }) });
  assert.equal(answer.result, 'ok', JSON.stringify(answer));
  return { a, b, toB: mediaPort(offer.sdp as string), toA: mediaPort(answer.sdp as string) };
}

export type TwoPartyCall = Awaited<ReturnType<typeof twoPartyCall>>;

/** One RTP packet each way; true when both arrive. */
export async function relaysBothWays(c: TwoPartyCall, seq: number): Promise<boolean> {
  await c.a.rtp.send(rtp({ ssrc: 0xa, seq }), c.toA);
  const atB = await c.b.rtp.recv(1000);
  await c.b.rtp.send(rtp({ ssrc: 0xb, seq }), c.toB);
  const atA = await c.a.rtp.recv(1000);
  return atB !== null && atA !== null;
}
