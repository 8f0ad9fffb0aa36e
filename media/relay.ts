// In-process media plane: owns the UDP sockets, the port pools and the packet path.
// Imports nothing of ours outside media/. The packet handler is synchronous, silent and
// allocation-free apart from the view of the datagram the socket layer (media/udp.ts) hands us.
import { PortPool } from './port-pool.js';
import { ChurnMap } from './churn-map.js';
import { udpIo, type UdpIo, type UdpSocket } from './udp.js';
import {
  C_BYTES, C_DROPPED, C_ERRORS, C_LAST_MS, C_PACKETS, C_SSRC, CounterSlots, type Slot,
} from './counters.js';
import {
  NoPortsError, PREBIND_PAIRS, type Endpoint, type MediaPlane, type OpenedPair, type PlaneEvent, type PortFigures, type RecordedFile,
  type RecordingRequest, type RecordingStream, type SocketCrypto, type SocketId, type SocketPlan, type SocketStats,
} from './plane.js';
import { PairQuality, readQuality } from './quality.js';
import { RecordingHub, recordingNow } from './recording-hub.js';
import type { CallRecorder } from './recording/recorder.js';
import { SocketSecurity } from './secure.js';
import { sameSdes } from './transform.js';
import { IceAgent, TA_MS } from './ice/agent.js';
import { isStun, parseStun } from './ice/stun.js';
import { DtlsEndpoint } from './dtls/endpoint.js';
import { PEER_RTCP_RECENT_MS, RTCP_TICK_MS, RtcpGenerator } from './rtcp-gen.js';

/** Valid packets from one new source (same SSRC) before it may become a stream's destination. */
export const LEARN_PACKETS = 3;
/** SSRCs a BUNDLE socket remembers for routing RTCP (announced, and seen in RTP either way). */
export const MAX_BUNDLE_SSRCS = 64;

/** Where one medium of a BUNDLE socket forwards (the same three fields as a socket's own). */
interface RelayRoute {
  sink: RelaySocket | null;
  rtcpSink: RelaySocket | null;
  forward: boolean;
}

export interface Clock { nowMs: number }

interface RelaySocket {
  id: SocketId;
  sock: UdpSocket;
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
  /** SRTP, ICE, DTLS and RTCP feedback filtering (see the WebRTC section); null on a plain stream. */
  sec: SocketSecurity | null;
  /** The RTCP socket of this RTP socket's pair (null on an RTCP socket). */
  partner: RelaySocket | null;
  /** BUNDLE (RFC 8843): one route per medium carried here; null: one medium (sink, rtcpSink, forward). */
  routes: RelayRoute[] | null;
  /** Payload type → index in `routes`, -1: none. */
  routeByPt: Int8Array;
  /** SSRC → index in `routes` (announced in the SDP, or seen in RTP in or out); null without BUNDLE. */
  routeBySsrc: Map<number, number> | null;
  /** RTCP generation towards this socket's party (generate-RTCP); null: off. */
  gen: RtcpGenerator | null;
}

export interface LocalPlaneOptions {
  /** Socket ids are idStart, idStart + idStep, …: a worker's ids never collide with another's. */
  idStart?: number;
  idStep?: number;
  /** Where the per-socket counters live (shared memory in a media worker). */
  counters?: CounterSlots;
  /** The socket layer (media/udp.ts): native batched I/O when built, else node:dgram. */
  io?: UdpIo;
}

const ANY_PT = new Uint8Array(128).fill(1);
const NO_ROUTES = new Int8Array(128).fill(-1);

/**
 * Accepted-payload-type tables, read-only and shared by every socket with the same list (calls
 * mostly offer the same few codecs): a 128-byte typed array is a malloc'd backing store, and one per
 * socket per plan showed in the NG thread's profile. Bounded; past the bound each gets its own.
 */
const ptTables = new Map<string, Uint8Array>();
const MAX_PT_TABLES = 1024;

function ptTable(list: readonly number[]): Uint8Array {
  const key = list.join(',');
  let t = ptTables.get(key);
  if (t !== undefined) return t;
  t = new Uint8Array(128);
  for (const pt of list) if (pt >= 0 && pt < 128) t[pt] = 1;
  if (ptTables.size < MAX_PT_TABLES) ptTables.set(key, t);
  return t;
}

export class LocalMediaPlane implements MediaPlane {
  private readonly pools = new Map<string, PortPool>();
  private readonly sockets = new ChurnMap<SocketId, RelaySocket>(true); // churn-map.ts says why not a Map
  private readonly listeners: ((ev: PlaneEvent) => void)[] = [];
  private nextId: number;
  private readonly idStep: number;
  private readonly counters: CounterSlots;
  private readonly recordings: RecordingHub;
  private readonly io: UdpIo;
  // WebRTC: the daemon's DTLS certificate, and the sockets whose full ICE agents need ticks.
  private cert: { certPem: string; keyPem: string } | null = null;
  private readonly iceSockets = new Set<RelaySocket>();
  private iceTimer: NodeJS.Timeout | null = null;
  // RTCP generation (media/rtcp-gen.ts): the sockets that may generate, and the one timer for all.
  private readonly genSockets = new Set<RelaySocket>();
  private genTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly range: { min: number; max: number },
    private readonly clock: Clock,
    addresses: readonly string[] = [],
    opts: LocalPlaneOptions = {},
  ) {
    this.nextId = opts.idStart ?? 1;
    this.idStep = opts.idStep ?? 1;
    this.counters = opts.counters ?? new CounterSlots(false);
    this.io = opts.io ?? udpIo();
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

  /** Per address: the ports asked of io.prebind that the pool has not handed out yet. */
  private readonly ahead = new Map<string, Set<number>>();

  /**
   * The next PREBIND_PAIRS pairs of the pool's queue get bound off this thread (io.prebind; the
   * addon keeps at most 256 such sockets a thread), so the offers that take them find their
   * sockets ready. Each take moves the window on by one pair.
   */
  private prebindAhead(address: string, pool: PortPool, taken: number): void {
    const io = this.io;
    if (io.prebind === undefined) return;
    let set = this.ahead.get(address);
    if (!set) { set = new Set(); this.ahead.set(address, set); }
    set.delete(taken);
    for (let i = 0; i < PREBIND_PAIRS; i++) {
      const p = pool.peek(i);
      if (p === undefined) break;
      if (set.has(p)) continue;
      set.add(p);
      io.prebind(address, p);
      io.prebind(address, p + 1);
    }
  }

  async openPair(address: string): Promise<OpenedPair> {
    const pool = this.pool(address);
    // Ports another program holds are skipped; each is tried once per call, so this ends.
    for (let tries = pool.total; tries > 0; tries--) {
      const port = pool.take();
      if (port === null) break;
      this.prebindAhead(address, pool, port);
      try {
        const rtp = await this.bind(address, port, 'rtp', null);
        try {
          // RTCP about the pair's stream updates the RTP socket's figures: one PairQuality a pair.
          const rtcp = await this.bind(address, port + 1, 'rtcp', rtp.q);
          rtp.partner = rtcp;
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

  private async bind(address: string, port: number, kind: 'rtp' | 'rtcp', q: PairQuality | null): Promise<RelaySocket> {
    const slot = this.counters.alloc();
    const s: RelaySocket = {
      id: 0, sock: null as unknown as UdpSocket, localAddress: address, localPort: port, kind,
      remoteAddr: null, remotePort: 0, sink: null, rtcpSink: null, forward: false, asymmetric: false, strictSource: false,
      mediaHandover: false, payloadTypes: ANY_PT, rtcpMux: false, sdpAddr: null, sdpPort: 0, closed: false,
      confirmed: false, candAddr: null, candPort: 0, candSsrc: 0, candCount: 0, hasSsrc: false,
      slot, c: slot.view, q: q ?? new PairQuality(slot.view), rec: null, sec: null,
      partner: null, gen: null, routes: null, routeByPt: NO_ROUTES, routeBySsrc: null,
    };
    try {
      // Send errors (unreachable peer, full buffer, …) are counted, never thrown.
      s.sock = await this.io.bind(address, port, (buf, addr, p) => this.onPacket(s, buf, addr, p), () => { s.c[C_ERRORS]++; });
    } catch (e) {
      this.counters.release(slot);
      throw e;
    }
    s.id = this.nextId;
    this.nextId += this.idStep;
    this.sockets.set(s.id, s);
    return s;
  }

  /** The packet path: once per datagram. */
  private onPacket(s: RelaySocket, buf: Buffer, addr: string, port: number): void {
    const c = s.c;
    c[C_PACKETS]++;
    c[C_BYTES] += buf.length;
    // RFC 7983: 128..191 is RTP/RTCP. STUN (0..3) and DTLS (20..63) go to the socket's ICE agent
    // and DTLS endpoint when it has them; anything else, or shorter than an RTCP header, is not media.
    const sec = s.sec;
    if (buf.length < 8 || (buf[0]! & 0xc0) !== 0x80) {
      if (sec !== null && buf[0]! < 64 && this.onControl(s, sec, buf, addr, port)) return;
      c[C_ERRORS]++; c[C_DROPPED]++; return;
    }
    if (sec !== null && sec.secure) {
      // SRTP is authenticated before the source checks, so a forged packet never teaches us a
      // new address; failures and replays are counted in the context (srtpFailures).
      const plain = sec.inbound(buf, buf[1]! >= 192 && buf[1]! <= 223);
      if (plain === null) { c[C_DROPPED]++; return; }
      buf = plain;
    }
    if (s.remoteAddr !== null && port === s.remotePort && addr === s.remoteAddr) {
      if (!s.confirmed) this.confirm(s);
    } else if (sec !== null && sec.ice !== null ? !sec.ice.isValid(addr, port) : !this.fromOtherSource(s, buf, addr, port)) {
      // With ICE, media comes only from a pair that passed a check.
      c[C_DROPPED]++;
      return;
    }
    // Only media we accepted keeps the call alive: a stranger's junk must not defeat --timeout.
    c[C_LAST_MS] = this.clock.nowMs;
    const b1 = buf[1]!;
    const isRtcp = b1 >= 192 && b1 <= 223; // RFC 5761 4: RTCP packet types share RTP's PT space
    if (!s.hasSsrc && !isRtcp && buf.length >= 12) { c[C_SSRC] = buf.readUInt32BE(8); s.hasSsrc = true; }
    // BUNDLE: the packet's medium has its own sink; otherwise the socket's own fields are the route.
    const via: RelayRoute = s.routes === null ? s : this.routeOf(s, buf, isRtcp);
    // Statistics and recording see the packet as the party sent it, decrypted: SRTP unprotect goes
    // above this line, feedback filtering and SRTP protect below it.
    this.observe(s, buf, isRtcp, via);
    // On a muxed RTP socket, RTCP goes to the peer's RTCP destination.
    const sink = isRtcp && s.rtcpMux && via.rtcpSink !== null ? via.rtcpSink : via.sink;
    if (sink === null || !via.forward || sink.remoteAddr === null || sink.closed) { c[C_DROPPED]++; return; }
    if (sink.routeBySsrc !== null && !isRtcp) this.noteOutbound(sink, s, buf);
    // Towards the sink's party: feedback removed if it takes none, SRTP if it speaks it.
    const ss = sink.sec;
    if (ss !== null) {
      const out = ss.outbound(buf, isRtcp);
      if (out === null) { c[C_DROPPED]++; return; }
      buf = out;
    }
    // Native I/O sends before returning; dgram reads `buf` on a later tick, and then `buf` is
    // this datagram's own Buffer (or a new one), never reused.
    sink.sock.send(buf, sink.remotePort, sink.remoteAddr);
  }

  /**
   * Per-packet quality figures and the recorder feed: synchronous, no allocation for RTP. A BUNDLE
   * socket's figures are those of its first medium (one RTP stream per PairQuality).
   */
  private observe(s: RelaySocket, buf: Buffer, isRtcp: boolean, via: RelayRoute): void {
    const nowMs = recordingNow();
    if (!isRtcp) { if (s.kind === 'rtp' && (via === s || via === s.routes![0])) s.q.rtpPacket(buf, nowMs); }
    else {
      const peer = s.rtcpMux && via.rtcpSink !== null ? via.rtcpSink : via.sink;
      s.q.rtcpPacket(buf, nowMs, peer === null ? null : peer.q);
    }
    const rec = s.rec;
    if (rec !== null) { if (isRtcp) rec.rtcp(s.id, buf, nowMs); else rec.rtp(s.id, buf, nowMs); }
  }

  /**
   * The medium of a packet on a BUNDLE socket (RFC 8843 9.2): RTP by payload type (unique within a
   * bundle; its SSRC is noted for RTCP), else by a known SSRC; RTCP by the sender's SSRC, else by
   * the SSRC it reports on (feedback's media source, the first report block). Unknown: the first.
   */
  private routeOf(s: RelaySocket, buf: Buffer, isRtcp: boolean): RelayRoute {
    const routes = s.routes!, bySsrc = s.routeBySsrc!;
    if (!isRtcp) {
      if (buf.length < 12) return routes[0]!;
      const ssrc = buf.readUInt32BE(8);
      const i = s.routeByPt[buf[1]! & 0x7f]!;
      if (i < 0) return routes[bySsrc.get(ssrc) ?? 0]!;
      if (bySsrc.get(ssrc) !== i && (bySsrc.size < MAX_BUNDLE_SSRCS || bySsrc.has(ssrc))) bySsrc.set(ssrc, i);
      return routes[i]!;
    }
    let i = bySsrc.get(buf.readUInt32BE(4));
    if (i === undefined) {
      // RFC 3550 6.4: SR has 20 bytes of sender info before its blocks; RR, RTPFB and PSFB (RFC
      // 4585 6.1) have the reported or media source SSRC right after the sender's.
      const pt = buf[1]!;
      const about = pt === 205 || pt === 206 || (pt === 201 && (buf[0]! & 0x1f) > 0) ? 8
        : pt === 200 && (buf[0]! & 0x1f) > 0 ? 28 : -1;
      if (about > 0 && buf.length >= about + 4) i = bySsrc.get(buf.readUInt32BE(about));
    }
    return routes[i ?? 0]!;
  }

  /** RTP leaving a BUNDLE socket `b`: its SSRC belongs to the medium that `from` feeds (for RTCP about it). */
  private noteOutbound(b: RelaySocket, from: RelaySocket, buf: Buffer): void {
    if (buf.length < 12) return;
    const bySsrc = b.routeBySsrc!;
    const ssrc = buf.readUInt32BE(8);
    if (bySsrc.has(ssrc) || bySsrc.size >= MAX_BUNDLE_SSRCS) return;
    const routes = b.routes!;
    for (let i = 0; i < routes.length; i++) if (routes[i]!.sink === from) { bySsrc.set(ssrc, i); return; }
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
      s.payloadTypes = p.payloadTypes.length === 0 ? ANY_PT : ptTable(p.payloadTypes);
      this.installBundle(s, p);
      if (s.kind === 'rtp') s.q.setClockRates(p.clockRates ?? null);
      this.installSecurity(s, p);
      this.installRtcpGen(s, p);
    }
  }

  private installBundle(s: RelaySocket, p: SocketPlan): void {
    const bundle = p.bundle;
    if (!bundle || bundle.length === 0) { s.routes = null; s.routeByPt = NO_ROUTES; s.routeBySsrc = null; return; }
    const sock = (id: SocketId | null): RelaySocket | null => (id === null ? null : this.sockets.get(id) ?? null);
    s.routes = bundle.map((r) => ({ sink: sock(r.sink), rtcpSink: sock(r.rtcpSink), forward: r.forward }));
    const byPt = new Int8Array(128).fill(-1);
    const bySsrc = new Map<number, number>();
    bundle.forEach((r, i) => {
      for (const pt of r.payloadTypes) if (pt >= 0 && pt < 128 && byPt[pt] === -1) byPt[pt] = i;
      for (const x of r.ssrcs) if (!bySsrc.has(x >>> 0) && bySsrc.size < MAX_BUNDLE_SSRCS) bySsrc.set(x >>> 0, i);
    });
    s.routeByPt = byPt;
    s.routeBySsrc = bySsrc;
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
    if (s.sec !== null) { s.sec.close(); s.sec = null; this.iceSockets.delete(s); }
    if (s.gen !== null) { s.gen = null; this.genSockets.delete(s); }
    // The RTP port owns the pair; it goes back when the RTCP socket (port + 1) closes. At once:
    // libuv closes the descriptor synchronously, so the next offer can bind the port again.
    if (s.kind === 'rtcp') this.pool(s.localAddress).release(s.localPort - 1);
    // The slot goes back once the socket can no longer count into it.
    return s.sock.close().then(() => { this.counters.release(s.slot); });
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
        ...this.securityStats(s),
      });
    }
    return out;
  }

  /** Where each socket sends and whether that is confirmed: what a media worker reports after install (not the full stats). */
  remoteStates(ids: readonly SocketId[]): { id: SocketId; remote: Endpoint | null; confirmed: boolean }[] {
    const out: { id: SocketId; remote: Endpoint | null; confirmed: boolean }[] = [];
    for (const id of ids) {
      const s = this.sockets.get(id);
      if (s) out.push({ id, remote: s.remoteAddr === null ? null : { address: s.remoteAddr, port: s.remotePort }, confirmed: s.confirmed });
    }
    return out;
  }

  latestPacketMs(ids: readonly SocketId[]): number {
    let last = 0;
    for (const id of ids) {
      const s = this.sockets.get(id);
      if (s !== undefined && s.c[C_LAST_MS]! > last) last = s.c[C_LAST_MS]!;
    }
    return last;
  }

  socketCounters(ids: readonly SocketId[], out: Float64Array): number {
    let known = 0;
    for (let i = 0; i < ids.length; i++) {
      const s = this.sockets.get(ids[i]!);
      if (s === undefined) continue;
      const c = s.c;
      out[3 * i] = c[C_PACKETS]!; out[3 * i + 1] = c[C_BYTES]!; out[3 * i + 2] = c[C_ERRORS]!;
      known++;
    }
    return known;
  }

  /** Where a socket's counters live (a media worker tells the main thread). */
  slotOf(id: SocketId): { chunk: number; index: number } | null {
    const s = this.sockets.get(id);
    return s ? { chunk: s.slot.chunk, index: s.slot.index } : null;
  }

  ports(): PortFigures[] {
    const out: PortFigures[] = [...this.pools].map(([address, p]) => ({ address, free: p.available, total: p.total }));
    if (this.io.parking) {
      for (const f of this.io.parking()) {
        const p = out.find((x) => x.address === f.address);
        if (p) { p.parked = f.parked; p.reused = f.reused; p.parkedDrops = f.drops; }
      }
    }
    return out;
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

  // ---- WebRTC: ICE, DTLS-SRTP, SDES-SRTP, RTCP feedback filtering (media/secure.ts) ----------

  setCertificate(cert: { certPem: string; keyPem: string }): void {
    this.cert = { certPem: cert.certPem, keyPem: cert.keyPem };
  }

  /** STUN to the ICE agent, DTLS to the DTLS endpoint. False: not for us (counted as junk). */
  private onControl(s: RelaySocket, sec: SocketSecurity, buf: Buffer, addr: string, port: number): boolean {
    // ICE and DTLS may keep parts of a message past this call: a borrowed view is copied (rare path).
    if (this.io.borrowedBuffers) buf = Buffer.from(buf);
    if (buf[0]! < 4) {
      if (sec.ice === null || !isStun(buf)) return false;
      const msg = parseStun(buf);
      if (msg === null) return false;
      sec.ice.onStun(msg, addr, port, Date.now());
      return true;
    }
    if (buf[0]! < 20 || sec.dtls === null) return false;
    // DTLS only from the party: a validated ICE pair, else its known address (or, while none is
    // known, the first source the endpoint heard). Anyone else never touches the handshake.
    const fromParty = sec.ice !== null ? sec.ice.isValid(addr, port)
      : s.remoteAddr === null || (addr === s.remoteAddr && port === s.remotePort);
    if (!fromParty) return false;
    sec.dtls.receive(buf, addr, port);
    return true;
  }

  private installSecurity(s: RelaySocket, p: SocketPlan): void {
    const old = s.sec;
    if (!SocketSecurity.needed(p)) {
      if (old !== null) { old.close(); s.sec = null; this.iceSockets.delete(s); }
      return;
    }
    const crypto = p.crypto ?? null;
    let sec: SocketSecurity;
    if (old !== null && sameSdes(old.crypto, crypto) && sameDtls(old.crypto, crypto)) {
      sec = old; // same keys: contexts, rollover counters, replay windows and the DTLS session stay
      sec.rtcpFeedback = p.rtcpFeedback !== false;
      sec.generateRtcp = p.generateRtcp === true;
    } else {
      sec = new SocketSecurity(crypto, p);
      if (old !== null) { old.dtls?.close(); sec.ice = old.ice; }
    }
    s.sec = sec;
    this.installIce(s, sec, p);
    if (crypto?.dtls && sec.dtls === null && !sec.dtlsFailed) this.makeDtls(s, sec, crypto.dtls);
    this.maybeStartDtls(s, sec);
  }

  private installIce(s: RelaySocket, sec: SocketSecurity, p: SocketPlan): void {
    const cfg = p.ice ?? null;
    if (cfg === null) {
      if (sec.ice !== null) { sec.ice.close(); sec.ice = null; this.iceSockets.delete(s); }
      return;
    }
    const now = Date.now();
    if (sec.ice !== null && sec.ice.sameSession(cfg)) sec.ice.update(cfg, now);
    else {
      sec.ice?.close();
      const agent: IceAgent = new IceAgent(cfg, s.kind === 'rtp' ? 1 : 2, {
        send: (b, address, port) => { if (!s.closed) s.sock.send(b, port, address); },
        onSelected: (r) => {
          if (s.sec?.ice !== agent) return;
          s.remoteAddr = r?.address ?? null; s.remotePort = r?.port ?? 0; s.confirmed = r !== null;
          if (r !== null && agent.state === 'connected') this.emit({ type: 'ice', id: s.id, state: 'connected', remote: r });
          this.maybeStartDtls(s, s.sec);
        },
        onState: (state) => {
          if (s.sec?.ice === agent) this.emit({ type: 'ice', id: s.id, state, remote: agent.selected });
        },
      }, now);
      sec.ice = agent;
    }
    // Media goes only to the pair ICE selected: the SDP's address is a default, not validated.
    const sel = sec.ice.selected;
    s.remoteAddr = sel?.address ?? null; s.remotePort = sel?.port ?? 0; s.confirmed = sel !== null;
    if (sec.ice.lite) this.iceSockets.delete(s);
    else {
      this.iceSockets.add(s);
      if (this.iceTimer === null) {
        this.iceTimer = setInterval(() => this.iceTick(), TA_MS);
        this.iceTimer.unref();
      }
    }
  }

  private iceTick(): void {
    const now = Date.now();
    for (const s of this.iceSockets) {
      const agent = s.sec?.ice;
      if (s.closed || !agent || agent.lite) { this.iceSockets.delete(s); continue; }
      agent.tick(now);
    }
    if (this.iceSockets.size === 0 && this.iceTimer !== null) { clearInterval(this.iceTimer); this.iceTimer = null; }
  }

  private makeDtls(s: RelaySocket, sec: SocketSecurity, cfg: NonNullable<SocketCrypto['dtls']>): void {
    if (this.cert === null) {
      sec.dtlsFailed = true;
      this.emit({ type: 'dtls', id: s.id, state: 'failed', reason: 'no DTLS certificate yet' });
      return;
    }
    sec.dtls = new DtlsEndpoint({ role: cfg.role, cert: this.cert, fingerprint: cfg.fingerprint }, {
      send: (b, source) => {
        if (s.closed) return;
        if (s.remoteAddr !== null) s.sock.send(b, s.remotePort, s.remoteAddr);
        else if (source !== null) s.sock.send(b, source.port, source.address);
      },
      onConnected: (keys) => {
        if (s.sec !== sec) return;
        sec.setKeys(keys);
        this.emit({ type: 'dtls', id: s.id, state: 'connected', reason: null });
      },
      onFailed: (reason) => {
        if (s.sec !== sec) return;
        sec.dtlsFailed = true;
        this.emit({ type: 'dtls', id: s.id, state: 'failed', reason });
      },
    });
  }

  /** Our DTLS client starts once it knows where the party is (with ICE: a selected pair). */
  private maybeStartDtls(s: RelaySocket, sec: SocketSecurity | null): void {
    const d = sec?.dtls;
    if (!d || d.opts.role !== 'client' || d.state !== 'idle' || s.remoteAddr === null) return;
    d.start();
  }

  /** SRTP failures and ICE/DTLS state of every socket that has them (a media worker reports these). */
  securityStates(): ({ id: SocketId } & Required<Pick<SocketStats, 'srtpFailures' | 'ice' | 'dtls'>>)[] {
    const out: ({ id: SocketId } & Required<Pick<SocketStats, 'srtpFailures' | 'ice' | 'dtls'>>)[] = [];
    for (const s of this.sockets.values()) {
      if (s.sec === null) continue;
      const st = this.securityStats(s);
      out.push({ id: s.id, srtpFailures: st.srtpFailures ?? 0, ice: st.ice ?? null, dtls: st.dtls ?? null });
    }
    return out;
  }

  private securityStats(s: RelaySocket): Pick<SocketStats, 'srtpFailures' | 'ice' | 'dtls'> {
    const sec = s.sec;
    if (sec === null) return { srtpFailures: 0, ice: null, dtls: null };
    const d = sec.dtls;
    return {
      srtpFailures: sec.failures(),
      ice: sec.ice?.state ?? null,
      dtls: d !== null ? (d.state === 'idle' ? 'handshaking' : d.state) : sec.dtlsFailed ? 'failed' : null,
    };
  }

  // ---- RTCP generation (generate-RTCP, media/rtcp-gen.ts) -----------------------------------

  private installRtcpGen(s: RelaySocket, p: SocketPlan): void {
    // Reports are built on the RTP socket (its pair's statistics) and leave the party's RTCP
    // destination: the RTP socket itself with rtcp-mux, else the pair's RTCP socket.
    if (p.generateRtcp !== true || s.kind !== 'rtp') {
      if (s.gen !== null) { s.gen = null; this.genSockets.delete(s); }
      return;
    }
    s.gen ??= new RtcpGenerator();
    this.genSockets.add(s);
    if (this.genTimer === null) {
      this.genTimer = setInterval(() => this.genTick(), RTCP_TICK_MS);
      this.genTimer.unref();
    }
  }

  /** One timer for every generating socket: a report is due every few seconds, never per packet. */
  private genTick(): void {
    const now = recordingNow(); // the clock observe() feeds PairQuality with
    for (const s of this.genSockets) {
      const gen = s.gen;
      if (s.closed || gen === null) { this.genSockets.delete(s); continue; }
      // The stream we forward to this party comes from our sink's socket; only the socket media
      // to the party leaves from (the sink's sink) reports, so extra ICE sockets stay quiet.
      const fwd = s.sink !== null && !s.sink.closed && s.sink.sink === s ? s.sink : null;
      if (!gen.due(now)) continue;
      // The peer sends its own RTCP: that is forwarded instead.
      if (fwd !== null && fwd.q.lastRtcpMs !== 0 && now - fwd.q.lastRtcpMs < PEER_RTCP_RECENT_MS) continue;
      const t = s.rtcpMux ? s : s.partner;
      if (t === null || t.closed || t.remoteAddr === null) continue;
      const pkt = gen.report(s.q, fwd !== null && fwd.forward ? fwd.q : null, now, Date.now());
      if (pkt === null) continue;
      const out = t.sec === null ? pkt : t.sec.outbound(pkt, true);
      if (out === null) continue; // SRTP without keys yet
      t.sock.send(out, t.remotePort, t.remoteAddr);
    }
    if (this.genSockets.size === 0 && this.genTimer !== null) { clearInterval(this.genTimer); this.genTimer = null; }
  }

  async shutdown(): Promise<void> {
    if (this.iceTimer !== null) { clearInterval(this.iceTimer); this.iceTimer = null; }
    if (this.genTimer !== null) { clearInterval(this.genTimer); this.genTimer = null; }
    // Recordings first: their files get their headers and metadata before the process ends.
    await this.recordings.stopAll();
    await Promise.all([...this.sockets.values()].map((s) => this.closeSocket(s)));
  }
}

function sameDtls(a: SocketCrypto | null | undefined, b: SocketCrypto | null | undefined): boolean {
  const x = a?.dtls, y = b?.dtls;
  if (!x || !y) return !x && !y;
  return x.role === y.role && x.fingerprint?.hash === y.fingerprint?.hash && x.fingerprint?.value === y.fingerprint?.value;
}
