// In-process media plane: owns the UDP sockets, the port pools and the packet path.
// Imports nothing of ours outside media/. The packet handler is synchronous, silent and
// allocation-free apart from the Buffer dgram hands us (which we forward as it is).
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { PortPool } from './port-pool.js';
import {
  C_BYTES, C_DROPPED, C_ERRORS, C_LAST_MS, C_PACKETS, C_SSRC, CounterSlots, type Slot,
} from './counters.js';
import {
  NoPortsError, type Endpoint, type MediaPlane, type OpenedPair, type PlaneEvent, type RecordedFile,
  type RecordingRequest, type RecordingStream, type SocketId, type SocketPlan, type SocketStats,
} from './plane.js';
import { PairQuality, readQuality } from './quality.js';
import { RecordingHub, recordingNow } from './recording-hub.js';
import type { CallRecorder } from './recording/recorder.js';

/** Valid packets from one new source (same SSRC) before it may become a stream's destination. */
export const LEARN_PACKETS = 3;

export interface Clock { nowMs: number }

interface RelaySocket {
  id: SocketId;
  sock: dgram.Socket;
  localAddress: string;
  localPort: number;
  kind: 'rtp' | 'rtcp';
  // plan
  remoteAddr: string | null;
  remotePort: number;
  sink: RelaySocket | null;
  rtcpSink: RelaySocket | null;
  forward: boolean;
  asymmetric: boolean;
  strictSource: boolean;
  mediaHandover: boolean;
  payloadTypes: Uint8Array; // 128 entries: 1 = accepted; all 1 when the plan lists none
  rtcpMux: boolean;
  /** The remote the last plan named; a plan naming it again keeps what was learned since. */
  sdpAddr: string | null;
  sdpPort: number;
  closed: boolean;
  // state
  confirmed: boolean;
  candAddr: string | null;
  candPort: number;
  candSsrc: number;
  candCount: number;
  hasSsrc: boolean;
  /** packets, bytes, errors, dropped, lastPacketMs, ssrc: see counters.ts (shared with the main thread in a worker). */
  slot: Slot;
  c: Float64Array;
  // quality and recording (see observe())
  /** Stream quality of the pair (shared by its RTP and RTCP sockets). */
  q: PairQuality;
  /** The call's recorder while it records this socket; null otherwise. */
  rec: CallRecorder | null;
}

export interface LocalPlaneOptions {
  /** Socket ids are idStart, idStart + idStep, …: a worker's ids never collide with another's. */
  idStart?: number;
  idStep?: number;
  /** Where the per-socket counters live (shared memory in a media worker). */
  counters?: CounterSlots;
}

const ANY_PT = new Uint8Array(128).fill(1);

export class LocalMediaPlane implements MediaPlane {
  private readonly pools = new Map<string, PortPool>();
  private readonly sockets = new Map<SocketId, RelaySocket>();
  private readonly listeners: ((ev: PlaneEvent) => void)[] = [];
  private nextId: number;
  private readonly idStep: number;
  private readonly counters: CounterSlots;
  private readonly recordings: RecordingHub;

  constructor(
    private readonly range: { min: number; max: number },
    private readonly clock: Clock,
    addresses: readonly string[] = [],
    opts: LocalPlaneOptions = {},
  ) {
    this.nextId = opts.idStart ?? 1;
    this.idStep = opts.idStep ?? 1;
    this.counters = opts.counters ?? new CounterSlots(false);
    // Pools of the configured addresses exist from the start, so `statistics` shows them unused.
    for (const a of addresses) this.pool(a);
    this.recordings = new RecordingHub({
      attach: (id, rec) => { const s = this.sockets.get(id); if (s) s.rec = rec; return s !== undefined; },
      remoteOf: (id) => { const s = this.sockets.get(id); return s?.remoteAddr ? { address: s.remoteAddr, port: s.remotePort } : null; },
      emit: (ev) => this.emit(ev),
    });
  }

  private pool(address: string): PortPool {
    let p = this.pools.get(address);
    if (!p) { p = new PortPool(this.range.min, this.range.max); this.pools.set(address, p); }
    return p;
  }

  async openPair(address: string): Promise<OpenedPair> {
    const pool = this.pool(address);
    // Ports another program holds are skipped; each is tried once per call, so this ends.
    for (let tries = pool.total; tries > 0; tries--) {
      const port = pool.take();
      if (port === null) break;
      try {
        const rtp = await this.bind(address, port, 'rtp');
        try {
          const rtcp = await this.bind(address, port + 1, 'rtcp');
          rtcp.q = rtp.q; // RTCP about the pair's stream updates the RTP socket's figures
          return { rtp: rtp.id, rtcp: rtcp.id, address, port };
        } catch (e) {
          await this.closeSocket(rtp);
          throw e;
        }
      } catch (e) {
        // Busy port: keep it out of the queue for a while (it goes to the back), try the next.
        setTimeout(() => pool.release(port), 30_000).unref();
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' && (e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
      }
    }
    throw new NoPortsError(address);
  }

  private bind(address: string, port: number, kind: 'rtp' | 'rtcp'): Promise<RelaySocket> {
    const v6 = isIP(address) === 6;
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
    const id = this.nextId;
    this.nextId += this.idStep;
    const slot = this.counters.alloc();
    const s: RelaySocket = {
      id, sock, localAddress: address, localPort: port, kind,
      remoteAddr: null, remotePort: 0, sink: null, rtcpSink: null, forward: false, asymmetric: false, strictSource: false,
      mediaHandover: false, payloadTypes: ANY_PT, rtcpMux: false, sdpAddr: null, sdpPort: 0, closed: false,
      confirmed: false, candAddr: null, candPort: 0, candSsrc: 0, candCount: 0, hasSsrc: false,
      slot, c: slot.view, q: new PairQuality(slot.view), rec: null,
    };
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => { sock.close(); this.counters.release(slot); reject(err); };
      sock.once('error', onError);
      sock.bind({ address, port, exclusive: true }, () => {
        sock.off('error', onError);
        // Send errors (unreachable peer, …) arrive here: count, never throw.
        sock.on('error', () => { s.c[C_ERRORS]++; });
        sock.on('message', (buf, rinfo) => this.onPacket(s, buf, rinfo.address, rinfo.port));
        this.sockets.set(s.id, s);
        resolve(s);
      });
    });
  }

  /** The packet path: once per datagram. */
  private onPacket(s: RelaySocket, buf: Buffer, addr: string, port: number): void {
    const c = s.c;
    c[C_PACKETS]++;
    c[C_BYTES] += buf.length;
    // RFC 7983: 128..191 is RTP/RTCP. STUN (0..3) and DTLS (20..63) need ICE/DTLS, not set up
    // on a plain stream; anything else, or shorter than an RTCP header, is not media.
    if (buf.length < 8 || (buf[0]! & 0xc0) !== 0x80) { c[C_ERRORS]++; c[C_DROPPED]++; return; }
    if (s.remoteAddr !== null && port === s.remotePort && addr === s.remoteAddr) {
      if (!s.confirmed) this.confirm(s);
    } else if (!this.fromOtherSource(s, buf, addr, port)) {
      c[C_DROPPED]++;
      return;
    }
    // Only media we accepted keeps the call alive: a stranger's junk must not defeat --timeout.
    c[C_LAST_MS] = this.clock.nowMs;
    const b1 = buf[1]!;
    const isRtcp = b1 >= 192 && b1 <= 223; // RFC 5761 4: RTCP packet types share RTP's PT space
    if (!s.hasSsrc && !isRtcp && buf.length >= 12) { c[C_SSRC] = buf.readUInt32BE(8); s.hasSsrc = true; }
    // Statistics and recording see the packet as the party sent it, decrypted: SRTP unprotect goes
    // above this line, feedback filtering and SRTP protect below it.
    this.observe(s, buf, isRtcp);
    // On a muxed RTP socket, RTCP goes to the peer's RTCP destination.
    const sink = isRtcp && s.rtcpMux && s.rtcpSink !== null ? s.rtcpSink : s.sink;
    if (sink === null || !s.forward || sink.remoteAddr === null || sink.closed) { c[C_DROPPED]++; return; }
    // dgram reads `buf` on a later tick; it is this datagram's own Buffer and is never reused.
    sink.sock.send(buf, sink.remotePort, sink.remoteAddr);
  }

  /** Per-packet quality figures and the recorder feed: synchronous, no allocation for RTP. */
  private observe(s: RelaySocket, buf: Buffer, isRtcp: boolean): void {
    const nowMs = recordingNow();
    if (!isRtcp) { if (s.kind === 'rtp') s.q.rtpPacket(buf, nowMs); }
    else {
      const peer = s.rtcpMux && s.rtcpSink !== null ? s.rtcpSink : s.sink;
      s.q.rtcpPacket(buf, nowMs, peer === null ? null : peer.q);
    }
    const rec = s.rec;
    if (rec !== null) { if (isRtcp) rec.rtcp(s.id, buf, nowMs); else rec.rtp(s.id, buf, nowMs); }
  }

  /**
   * A packet not from the stream's remote. Returns whether to forward it. Only well-formed media
   * for this stream is forwarded, and only several packets of one SSRC from one source may
   * become the destination, so a stray or forged datagram never redirects the call's audio.
   */
  private fromOtherSource(s: RelaySocket, buf: Buffer, addr: string, port: number): boolean {
    if (s.confirmed && s.strictSource) return false;
    if (!this.validForLearning(s, buf)) { s.c[C_ERRORS]++; return false; }
    if (s.asymmetric || (s.confirmed && !s.mediaHandover)) return true;
    const ssrc = buf.readUInt32BE(buf[1]! >= 192 && buf[1]! <= 223 ? 4 : 8);
    if (s.candAddr === addr && s.candPort === port && s.candSsrc === ssrc) s.candCount++;
    else { s.candAddr = addr; s.candPort = port; s.candSsrc = ssrc; s.candCount = 1; }
    if (s.candCount >= LEARN_PACKETS) {
      const previous = s.remoteAddr === null ? null : { address: s.remoteAddr, port: s.remotePort };
      s.remoteAddr = addr; s.remotePort = port;
      s.candAddr = null; s.candCount = 0;
      s.confirmed = true;
      this.emit({ type: 'learned', id: s.id, remote: { address: addr, port }, previous });
      if (s.rec !== null) this.recordings.learned(s.id);
    }
    return true;
  }

  private validForLearning(s: RelaySocket, buf: Buffer): boolean {
    const b1 = buf[1]!;
    const isRtcp = b1 >= 192 && b1 <= 223; // RFC 5761: RTCP packet types 192..223 share RTP's PT space
    if (isRtcp) {
      if (s.kind === 'rtp' && !s.rtcpMux) return false;
      // RFC 3550 6.4: length in 32-bit words minus one; a compound packet starts with SR/RR (200/201).
      return (b1 === 200 || b1 === 201) && (buf.readUInt16BE(2) + 1) * 4 <= buf.length;
    }
    if (s.kind === 'rtcp' || buf.length < 12) return false;
    const cc = buf[0]! & 0x0f;
    return 12 + cc * 4 <= buf.length && s.payloadTypes[b1 & 0x7f] === 1;
  }

  private confirm(s: RelaySocket): void {
    s.confirmed = true;
    s.candAddr = null; s.candCount = 0;
    this.emit({ type: 'confirmed', id: s.id, remote: { address: s.remoteAddr!, port: s.remotePort } });
  }

  private emit(ev: PlaneEvent): void {
    for (const l of this.listeners) l(ev);
  }

  install(plans: readonly SocketPlan[]): void {
    for (const p of plans) {
      const s = this.sockets.get(p.id);
      if (!s) continue;
      const sameSdp = (p.remote?.address ?? null) === s.sdpAddr && (p.remote?.port ?? 0) === s.sdpPort;
      // A plan that repeats what the SDP said keeps what was learned since (NAT): the learned
      // address wins until the SDP names a different endpoint.
      if (!sameSdp) {
        s.remoteAddr = p.remote?.address ?? null; s.remotePort = p.remote?.port ?? 0;
        s.confirmed = false; s.candAddr = null; s.candCount = 0;
      }
      s.sdpAddr = p.remote?.address ?? null; s.sdpPort = p.remote?.port ?? 0;
      s.sink = p.sink === null ? null : this.sockets.get(p.sink) ?? null;
      s.rtcpSink = p.rtcpSink === null ? null : this.sockets.get(p.rtcpSink) ?? null;
      s.forward = p.forward;
      s.asymmetric = p.asymmetric;
      s.strictSource = p.strictSource;
      s.mediaHandover = p.mediaHandover;
      s.rtcpMux = p.rtcpMux;
      if (p.payloadTypes.length === 0) s.payloadTypes = ANY_PT;
      else {
        const pts = new Uint8Array(128);
        for (const pt of p.payloadTypes) if (pt >= 0 && pt < 128) pts[pt] = 1;
        s.payloadTypes = pts;
      }
    }
  }

  close(ids: readonly SocketId[]): void {
    for (const id of ids) {
      const s = this.sockets.get(id);
      if (s) void this.closeSocket(s);
    }
  }

  private closeSocket(s: RelaySocket): Promise<void> {
    if (s.closed) return Promise.resolve();
    this.sockets.delete(s.id);
    s.closed = true; // a socket still naming this one as its sink drops from now on
    // The RTP port owns the pair; it goes back when the RTCP socket (port + 1) closes. At once:
    // libuv closes the descriptor synchronously, so the next offer can bind the port again.
    if (s.kind === 'rtcp') this.pool(s.localAddress).release(s.localPort - 1);
    return new Promise((resolve) => {
      // The slot goes back once the socket can no longer count into it.
      const done = (): void => { this.counters.release(s.slot); resolve(); };
      try { s.sock.close(done); } catch { done(); }
    });
  }

  stats(ids: readonly SocketId[]): SocketStats[] {
    const out: SocketStats[] = [];
    for (const id of ids) {
      const s = this.sockets.get(id);
      if (!s) continue;
      out.push({
        id, localAddress: s.localAddress, localPort: s.localPort,
        remote: s.remoteAddr === null ? null : { address: s.remoteAddr, port: s.remotePort },
        confirmed: s.confirmed, packets: s.c[C_PACKETS]!, bytes: s.c[C_BYTES]!, errors: s.c[C_ERRORS]!,
        dropped: s.c[C_DROPPED]!, lastPacketMs: s.c[C_LAST_MS]!, ssrc: s.hasSsrc ? s.c[C_SSRC]! : null,
        quality: s.kind === 'rtp' ? readQuality(s.c) : null,
      });
    }
    return out;
  }

  /** Where a socket's counters live (a media worker tells the main thread). */
  slotOf(id: SocketId): { chunk: number; index: number } | null {
    const s = this.sockets.get(id);
    return s ? { chunk: s.slot.chunk, index: s.slot.index } : null;
  }

  ports(): { address: string; free: number; total: number }[] {
    return [...this.pools].map(([address, p]) => ({ address, free: p.available, total: p.total }));
  }

  onEvent(listener: (ev: PlaneEvent) => void): void {
    this.listeners.push(listener);
  }

  // Call recording (media/recording-hub.ts): the recorder lives with the call's sockets.
  startRecording(req: RecordingRequest): void { this.recordings.start(req); }
  updateRecording(group: string, streams: RecordingStream[]): void { this.recordings.update(group, streams); }
  pauseRecording(group: string): void { this.recordings.pause(group); }
  resumeRecording(group: string): void { this.recordings.resume(group); }
  stopRecording(group: string): Promise<RecordedFile[]> { return this.recordings.stop(group); }
  /** Recordings in progress, and those that stopped on a file error since start. */
  recordingCounts(): { active: number; failures: number } {
    return { active: this.recordings.active, failures: this.recordings.failures };
  }

  async shutdown(): Promise<void> {
    // Recordings first: their files get their headers and metadata before the process ends.
    await this.recordings.stopAll();
    await Promise.all([...this.sockets.values()].map((s) => this.closeSocket(s)));
  }
}
