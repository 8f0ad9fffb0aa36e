// The media plane's UDP sockets, behind one interface with two implementations:
// - native (media/native/udp.c): sockets bound and closed synchronously, datagrams received with
//   recvmmsg() in batches into one arena and handed to JavaScript in one call per batch, sends
//   as synchronous sendto(). No Buffer, rinfo or closure is allocated per datagram except the
//   view of the arena handed to the packet handler.
// - dgram (node:dgram): the portable fallback, used when the addon is not built or when
//   RTPRELAY_SOCKET_IO=dgram; the same tests run against both.
// Imports nothing of ours.
import dgram from 'node:dgram';
import dns from 'node:dns';
import { isIP } from 'node:net';
import { nativeAddon } from './native-addon.js';

/** Called once per datagram. `buf` is only valid until the handler returns (native: a view of the arena). */
export type PacketHandler = (buf: Buffer, address: string, port: number) => void;

export interface UdpSocket {
  /** Synchronous with native I/O (the buffer may be reused at once); dgram reads `buf` later. */
  send(buf: Buffer, port: number, address: string): void;
  /**
   * Native I/O only: the datagram (copied, so `buf` may be reused at once) goes out from the
   * socket thread, sent after this event-loop turn; what the kernel refuses there is counted, not
   * reported. For replies the thread need not wait on (NG), not for the packet path.
   */
  sendSoon?(buf: Buffer, port: number, address: string): void;
  close(): Promise<void>;
  /** The bound port (what the kernel chose for port 0). */
  localPort(): number;
}

/** Parking of freed ports' sockets (UdpIo.setParking): how long, and the thread's socket budget. */
export interface SocketParking {
  ms: number;
  maxOpen: number;
}

export interface BindOptions {
  /** SO_RCVBUF in bytes. */
  recvBufferSize?: number;
}

export interface UdpIo {
  readonly kind: 'native' | 'dgram';
  /** Binds address:port; rejects with an Error whose `code` is the errno name (EADDRINUSE, …). */
  bind(address: string, port: number, onPacket: PacketHandler, onError: () => void, opts?: BindOptions): Promise<UdpSocket>;
  /**
   * A hint that address:port will be bound soon (native: the addon's socket thread binds it now,
   * off this thread, and bind() takes that socket). Absent or ignored: bind() binds it itself.
   */
  prebind?(address: string, port: number): void;
  /** Whether buffers handed to handlers must be copied before they are kept past the call. */
  readonly borrowedBuffers: boolean;
  /** NG commands handed to call threads without JavaScript (native only). */
  readonly ngRouting?: NgRouting;
  /** Datagrams queued with sendSoon on this thread that the kernel refused (native only). */
  sendSoonFailures?(): number;
  /**
   * Native only: from now on a closed socket stays bound ("parked") up to `ms` for a bind of the
   * same address and port to take (SocketPark says why); `maxOpen` bounds this thread's open and
   * parked sockets together (past it a closed socket is closed at once). ms 0: close at once.
   * `now` (milliseconds, default performance.now) is the clock parking times are read from.
   */
  setParking?(ms: number, maxOpen: number, now?: () => number): void;
  /** Closes the sockets parked for `ms` or longer (a timer does it each second while any are parked). */
  expireParked?(): void;
  /** Per local address that ever parked a socket: parked now, binds that took one, datagrams they dropped. */
  parking?(): ParkingFigures[];
}

/** One local address's parked sockets (UdpIo.parking); the counts run from the io's start. */
export interface ParkingFigures {
  address: string;
  /** Sockets parked now. */
  parked: number;
  /** Binds that took a parked socket instead of a new one. */
  reused: number;
  /** Datagrams that reached a parked socket (a freed port) and were dropped. */
  drops: number;
}

/**
 * NG commands from the thread that reads an NG socket straight to the call thread that holds their
 * call (media/native/ng-route.c): no decode and no postMessage in the reading thread.
 */
export interface NgRouting {
  /** From now on, commands read from `sock` (bound by this io) go to call threads, by call-id over `threads`; false if refused. */
  route(sock: UdpSocket, threads: number): false | { fd: number; v6: boolean };
  /**
   * In a call thread: the routed NG socket, to answer on. What is routed to this thread arrives
   * at `onPacket` (as from any socket of this io); closing it leaves the descriptor to its owner.
   */
  adopt(ng: { fd: number; v6: boolean }, onPacket: PacketHandler, onError: () => void): UdpSocket;
  /** In a call thread: take the commands routed to thread `index` from now on; false if refused. */
  serve(index: number): boolean;
  /** Commands handed to call threads so far, and those dropped because a thread's queue was full. */
  stats(): { routed: number; dropped: number };
}

// ---- parking -------------------------------------------------------------------------------

/**
 * Closed sockets kept bound for a while, by address and port, oldest first. Under load the ports
 * of ended calls come round again within seconds (the port pool hands out the one freed longest
 * ago), and closing a socket only to create and bind the same one later was the native layer's
 * socket thread's whole work: ~11 us a call's command, a fifth of the second core at ngload's
 * rate. A port whose socket is parked is free as far as the port pool is concerned; the socket
 * goes when a bind takes it, when it has been parked `ms`, or to make room (the thread's budget of
 * descriptors, or a bind that met the open-file limit). Plain policy, with the time passed in:
 * the caller owns the clock.
 */
export class SocketPark<T> {
  /** Map iteration is insertion order: the first entry was parked longest ago. */
  private readonly byKey = new Map<string, { item: T; at: number }>();

  constructor(readonly ms: number) {}

  get size(): number { return this.byKey.size; }

  /** Parks `item` under `key`; one parked under the same key before goes to `out` (to be closed). */
  park(key: string, item: T, now: number, out: T[]): void {
    const old = this.byKey.get(key);
    if (old !== undefined) { this.byKey.delete(key); out.push(old.item); }
    this.byKey.set(key, { item, at: now });
  }

  /** The item parked under `key`, no longer parked; undefined when there is none. */
  take(key: string): T | undefined {
    const e = this.byKey.get(key);
    if (e === undefined) return undefined;
    this.byKey.delete(key);
    return e.item;
  }

  has(key: string): boolean { return this.byKey.has(key); }

  /** Moves the items parked `ms` or longer before `now` to `out`. */
  expire(now: number, out: T[]): void {
    for (const [key, e] of this.byKey) {
      if (now - e.at < this.ms) break;
      this.byKey.delete(key);
      out.push(e.item);
    }
  }

  /** Moves the `n` oldest items to `out` (all of them for n >= size). */
  evict(n: number, out: T[]): void {
    for (const [key, e] of this.byKey) {
      if (n-- <= 0) break;
      this.byKey.delete(key);
      out.push(e.item);
    }
  }
}

// ---- dgram ---------------------------------------------------------------------------------

class DgramSocket implements UdpSocket {
  constructor(private readonly sock: dgram.Socket) {}
  send(buf: Buffer, port: number, address: string): void { this.sock.send(buf, port, address); }
  localPort(): number { return this.sock.address().port; }
  close(): Promise<void> {
    return new Promise((resolve) => { try { this.sock.close(() => resolve()); } catch { resolve(); } });
  }
}

/**
 * Sends go to IP literals: dgram's default lookup (dns.lookup) answers those a tick later through
 * nextTick and async-hooks scopes, on every send; this answers at once.
 */
function ipLookup(address: string, options: dns.LookupOneOptions | number, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = isIP(address);
  if (family !== 0) cb(null, address, family);
  else dns.lookup(address, options as dns.LookupOneOptions, cb);
}

export const dgramIo: UdpIo = {
  kind: 'dgram',
  borrowedBuffers: false,
  bind(address, port, onPacket, onError, opts) {
    const v6 = isIP(address) === 6;
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, lookup: ipLookup, ...(opts?.recvBufferSize ? { recvBufferSize: opts.recvBufferSize } : {}) });
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => { sock.close(); reject(err); };
      sock.once('error', fail);
      sock.bind({ address, port, exclusive: true }, () => {
        sock.off('error', fail);
        // Send errors (unreachable peer, …) arrive here: count, never throw.
        sock.on('error', onError);
        sock.on('message', (buf, rinfo) => onPacket(buf, rinfo.address, rinfo.port));
        resolve(new DgramSocket(sock));
      });
    });
  },
};

// ---- native --------------------------------------------------------------------------------

interface Addon {
  init(arena: Buffer, slotSize: number, meta: Int32Array, onBatch: (count: number) => void): number;
  open(family: number, address: string, port: number, rcvbuf?: number): number;
  prebind(family: number, address: string, port: number, rcvbuf?: number): number;
  localPort(fd: number): number;
  close(fd: number): number;
  park(fd: number): number;
  unpark(fd: number): number;
  send4(fd: number, buf: Buffer, port: number, address: number): number;
  send6(fd: number, buf: Buffer, port: number, address: string): number;
  ngRoute(fd: number, threads: number): number;
  ngServe(index: number): number;
  ngSend4(fd: number, buf: Buffer, port: number, address: number): number;
  ngSend6(fd: number, buf: Buffer, port: number, address: string): number;
  ngRouteStats(): [number, number];
  sendSoon4(fd: number, buf: Buffer, port: number, address: number): number;
  sendSoon6(fd: number, buf: Buffer, port: number, address: string): number;
  ngSendSoon4(fd: number, buf: Buffer, port: number, address: number): number;
  ngSendSoon6(fd: number, buf: Buffer, port: number, address: string): number;
  sendSoonFailed(): number;
}

/**
 * Bytes per datagram slot: the largest UDP payload, so nothing is cut (an NG offer from a browser
 * is several KiB). The arena is allocated unzeroed, so only the pages datagrams reach become
 * resident (a media packet touches one page of its slot).
 */
const SLOT_BYTES = 65536;
/** Datagrams per batch: the addon's MAX_BATCH, checked at init. */
const BATCH = 64;
const META_INTS = 8;

const ENOBUFS = 105, EINVAL = 22, EMFILE = 24, ENFILE = 23;
const ERRNO: Record<number, string> = { 98: 'EADDRINUSE', 13: 'EACCES', 99: 'EADDRNOTAVAIL', 24: 'EMFILE', 23: 'ENFILE', 22: 'EINVAL', 105: 'ENOBUFS' };

function errnoError(neg: number, what: string): NodeJS.ErrnoException {
  const code = ERRNO[-neg] ?? `E${-neg}`;
  const e: NodeJS.ErrnoException = new Error(`${what}: ${code}`);
  e.code = code; e.errno = neg;
  return e;
}

/** IPv4 dotted quad to a 32-bit number; -1 when it is not one. */
export function ipv4ToInt(s: string): number {
  let v = 0, part = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      v = v * 256 + part; part = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) { part = part * 10 + (c - 48); digits++; if (digits > 3) return -1; }
    else return -1;
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return v * 256 + part;
}

function intToIpv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function wordsToIpv6(a: number, b: number, c: number, d: number): string {
  const w = [a >>> 16, a & 0xffff, b >>> 16, b & 0xffff, c >>> 16, c & 0xffff, d >>> 16, d & 0xffff];
  // RFC 5952: the longest run (of two or more) of zero groups becomes "::".
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (x: number[]): string => x.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

class NativeSocket implements UdpSocket {
  // The last source seen, as words and as the string handed to the handler: a stream hears from
  // one address almost always, so the string is made once, not per datagram.
  srcFam = 0; srcA = 0; srcB = 0; srcC = 0; srcD = 0; srcStr = '';
  // The last destination, parsed once.
  private dstStr = ''; private dstInt = -1;
  closed = false;

  constructor(
    readonly io: NativeIo,
    readonly fd: number,
    readonly v6: boolean,
    readonly onPacket: PacketHandler,
    readonly onError: () => void,
    /** A routed NG socket of another thread (NgRouting.adopt): sent on under the addon's check, never closed here. */
    readonly adopted = false,
    /** Its parking key (NativeIo.key), '' where it may not be parked. */
    readonly key = '',
  ) {}

  send(buf: Buffer, port: number, address: string): void {
    if (this.closed) return;
    if (this.transmit(buf, port, address, false) < 0) this.onError();
  }

  sendSoon(buf: Buffer, port: number, address: string): void {
    if (this.closed) return;
    const r = this.transmit(buf, port, address, true);
    if (r === -ENOBUFS) this.send(buf, port, address); // the queue is full (or no socket thread)
    else if (r < 0) this.onError();
  }

  /** Sends now, or queues for the socket thread (`soon`): bytes, or -errno. */
  private transmit(buf: Buffer, port: number, address: string, soon: boolean): number {
    const a = this.io.addon, fd = this.fd;
    if (this.v6) {
      if (soon) return this.adopted ? a.ngSendSoon6(fd, buf, port, address) : a.sendSoon6(fd, buf, port, address);
      return this.adopted ? a.ngSend6(fd, buf, port, address) : a.send6(fd, buf, port, address);
    }
    if (address !== this.dstStr) { this.dstStr = address; this.dstInt = ipv4ToInt(address); }
    const ip = this.dstInt;
    if (ip < 0) return -EINVAL;
    if (soon) return this.adopted ? a.ngSendSoon4(fd, buf, port, ip) : a.sendSoon4(fd, buf, port, ip);
    return this.adopted ? a.ngSend4(fd, buf, port, ip) : a.send4(fd, buf, port, ip);
  }

  close(): Promise<void> {
    if (!this.closed) { this.closed = true; this.io.release(this); }
    return Promise.resolve();
  }

  localPort(): number { return this.io.addon.localPort(this.fd); }
}

class NativeIo implements UdpIo {
  readonly kind = 'native' as const;
  readonly borrowedBuffers = true;
  private readonly arena: Buffer;
  private readonly meta: Int32Array;
  /** Open sockets by descriptor (parked ones too: their datagrams are dropped). */
  private readonly byFd: (NativeSocket | undefined)[] = [];
  /** Sockets bound by this io and not closed or parked. */
  private open = 0;
  private park: SocketPark<NativeSocket> | null = null;
  private maxOpen = Infinity;
  private parkTimer: NodeJS.Timeout | null = null;
  private parkNow: () => number = () => performance.now();
  /** Parking figures by local address, each with the drop handler of its parked sockets. */
  private readonly parkedAt = new Map<string, ParkingFigures & { drop: () => void }>();

  constructor(readonly addon: Addon) {
    this.arena = Buffer.allocUnsafeSlow(SLOT_BYTES * BATCH);
    this.meta = new Int32Array(BATCH * META_INTS);
    const max = addon.init(this.arena, SLOT_BYTES, this.meta, (n) => this.onBatch(n));
    if (max > BATCH) throw new Error('udp addon batch larger than the arena');
  }

  /** A socket's parking key: what it was bound with. Port 0 (the kernel's choice) is never parked. */
  private static key(address: string, port: number, rcvbuf: number): string {
    return port === 0 ? '' : `${port} ${rcvbuf} ${address}`;
  }

  /** The figures of the address a parking key names (made on first use: addresses are few). */
  private figures(key: string): ParkingFigures & { drop: () => void } {
    const address = key.slice(key.indexOf(' ', key.indexOf(' ') + 1) + 1);
    let f = this.parkedAt.get(address);
    if (f === undefined) {
      const made = { address, parked: 0, reused: 0, drops: 0, drop: (): void => { made.drops++; } };
      this.parkedAt.set(address, made);
      f = made;
    }
    return f;
  }

  bind(address: string, port: number, onPacket: PacketHandler, onError: () => void, opts?: BindOptions): Promise<UdpSocket> {
    const v6 = isIP(address) === 6, rcvbuf = opts?.recvBufferSize ?? 0, key = NativeIo.key(address, port, rcvbuf);
    const parked = this.park !== null && key !== '' ? this.park.take(key) : undefined;
    let fd: number;
    if (parked !== undefined) {
      fd = parked.fd;
      this.addon.unpark(fd);
      const f = this.figures(key);
      f.parked--; f.reused++;
    } else {
      fd = this.addon.open(v6 ? 6 : 4, address, port, rcvbuf);
      if ((fd === -EMFILE || fd === -ENFILE) && this.park !== null && this.park.size > 0) {
        // The parked sockets hold descriptors a call needs: they go first (the addon's open
        // waits for their closes).
        this.closeParked((p, out) => p.evict(p.size, out));
        fd = this.addon.open(v6 ? 6 : 4, address, port, rcvbuf);
      }
      if (fd < 0) return Promise.reject(errnoError(fd, `bind ${address}:${port}`));
    }
    this.open++;
    const s = new NativeSocket(this, fd, v6, onPacket, onError, false, key);
    this.byFd[fd] = s;
    return Promise.resolve(s);
  }

  prebind(address: string, port: number): void {
    // A parked socket is as good as one bound ahead (and a bind ahead would find the port taken).
    if (this.park !== null && this.park.has(NativeIo.key(address, port, 0))) return;
    this.addon.prebind(isIP(address) === 6 ? 6 : 4, address, port, 0);
  }

  setParking(ms: number, maxOpen: number, now: () => number = () => performance.now()): void {
    this.closeParked((p, out) => p.evict(p.size, out));
    this.park = ms > 0 && maxOpen > 0 ? new SocketPark<NativeSocket>(ms) : null;
    this.maxOpen = maxOpen;
    this.parkNow = now;
  }

  expireParked(): void {
    this.closeParked((p, out) => p.expire(this.parkNow(), out));
  }

  parking(): ParkingFigures[] {
    return [...this.parkedAt.values()].map((f) => ({ address: f.address, parked: f.parked, reused: f.reused, drops: f.drops }));
  }

  /** Closes the parked sockets `pick` moves to its `out`. */
  private closeParked(pick: (p: SocketPark<NativeSocket>, out: NativeSocket[]) => void): void {
    if (this.park === null || this.park.size === 0) return;
    const out: NativeSocket[] = [];
    pick(this.park, out);
    this.closeAll(out);
    if (this.park.size === 0 && this.parkTimer !== null) { clearInterval(this.parkTimer); this.parkTimer = null; }
  }

  private closeAll(parked: NativeSocket[]): void {
    for (const s of parked) {
      if (this.byFd[s.fd] === s) this.byFd[s.fd] = undefined;
      this.figures(s.key).parked--;
      this.addon.close(s.fd);
    }
  }

  /** Datagrams queued by sendSoon on this thread that the kernel refused (dropped). */
  sendSoonFailures(): number { return this.addon.sendSoonFailed(); }

  release(s: NativeSocket): void {
    if (this.byFd[s.fd] === s) this.byFd[s.fd] = undefined;
    if (s.adopted) return;
    this.open--;
    const park = this.park;
    if (park !== null && s.key !== '' && this.open + park.size < this.maxOpen && this.addon.park(s.fd) === 0) {
      // A placeholder holds the descriptor: whoever kept `s` can neither send on it nor close it again.
      const f = this.figures(s.key);
      const p = new NativeSocket(this, s.fd, s.v6, f.drop, f.drop, false, s.key);
      p.closed = true;
      f.parked++;
      this.byFd[s.fd] = p;
      const out: NativeSocket[] = [];
      park.park(s.key, p, this.parkNow(), out);
      this.closeAll(out);
      if (this.parkTimer === null) {
        // Parked sockets past their time close within a second, calls or no calls.
        this.parkTimer = setInterval(() => this.expireParked(), Math.min(1000, park.ms));
        this.parkTimer.unref();
      }
      return;
    }
    this.addon.close(s.fd);
  }

  readonly ngRouting: NgRouting = {
    route: (sock, threads) => {
      if (!(sock instanceof NativeSocket) || sock.io !== this || sock.adopted) return false;
      return this.addon.ngRoute(sock.fd, threads) === 0 ? { fd: sock.fd, v6: sock.v6 } : false;
    },
    adopt: (ng, onPacket, onError) => {
      const s = new NativeSocket(this, ng.fd, ng.v6, onPacket, onError, true);
      this.byFd[ng.fd] = s;
      return s;
    },
    serve: (index) => this.addon.ngServe(index) === 0,
    stats: () => { const [routed, dropped] = this.addon.ngRouteStats(); return { routed, dropped }; },
  };

  /** One call per batch from the addon: the packet path for `count` datagrams. */
  private onBatch(count: number): void {
    const m = this.meta, arena = this.arena;
    for (let i = 0, b = 0; i < count; i++, b += META_INTS) {
      const s = this.byFd[m[b]!];
      if (s === undefined) continue; // closed while this batch was read
      const len = m[b + 1]!;
      if (len < 0) { s.onError(); continue; } // cut (cannot happen with 64 KiB slots): dropped, counted
      const fam = m[b + 2]!, a = m[b + 4]!;
      if (fam !== s.srcFam || a !== s.srcA || (fam === 6 && (m[b + 5] !== s.srcB || m[b + 6] !== s.srcC || m[b + 7] !== s.srcD))) {
        s.srcFam = fam; s.srcA = a; s.srcB = m[b + 5]!; s.srcC = m[b + 6]!; s.srcD = m[b + 7]!;
        s.srcStr = fam === 4 ? intToIpv4(a) : wordsToIpv6(a, s.srcB, s.srcC, s.srcD);
      }
      const off = i * SLOT_BYTES;
      s.onPacket(arena.subarray(off, off + len), s.srcStr, m[b + 3]!);
    }
  }
}

let nativeIo: NativeIo | null | undefined;

function loadNative(): NativeIo | null {
  if (nativeIo !== undefined) return nativeIo;
  nativeIo = null;
  try {
    const addon = nativeAddon();
    if (addon !== null) nativeIo = new NativeIo(addon as unknown as Addon);
  } catch { nativeIo = null; }
  return nativeIo;
}

/**
 * The socket layer for this thread: `mode` 'auto' (native when built, else dgram), 'native'
 * (fails when the addon is missing) or 'dgram'. RTPRELAY_SOCKET_IO overrides 'auto'.
 */
export function udpIo(mode: 'auto' | 'native' | 'dgram' = 'auto'): UdpIo {
  const m = mode === 'auto' ? (process.env.RTPRELAY_SOCKET_IO as typeof mode | undefined) ?? 'auto' : mode;
  if (m === 'dgram') return dgramIo;
  const n = loadNative();
  if (n !== null) return n;
  if (m === 'native') throw new Error('native UDP I/O is not built (npm run build:native)');
  return dgramIo;
}
