// Retransmission cache: a proxy that got no reply in time sends the same datagram again; it
// must get the first reply and the command must not run twice. Keyed on source + cookie +
// body (rtpengine keys on the cookie alone and so has answered one command with another's
// reply). Two generations, swapped every `ttlMs / 2`: an entry lives between ttl/2 and ttl, by
// default 30 to 60 s as in rtpengine, so a proxy's slowest retransmission still finds it.
//
// Every command's reply is kept for that long, so the cache is built to be no work for the
// garbage collector: the index is an open-addressing table in typed arrays and the requests and
// replies are copied into 1 MiB slabs, so an entry is a few integers and bytes, not a Map entry,
// a key string and a Buffer that all survive young-generation collections and are promoted.
// Against a Map of string keys to Buffer copies (ng-cpu.js, 90,000 commands): heap after a
// mark-compact 20 MB instead of 38-52 MB.
//
// A request is found by a hash of its first bytes (the cookie and the start of the body) and then
// compared byte for byte with the request kept beside its reply: exact, where the SHA-1 of the
// whole datagram used before only made a mix-up unlikely, and cheaper (the SHA-1 of an offer cost
// ~0.8 us, the copy ~0.05 us; the comparison runs only for a retransmission). Slabs of a dropped
// generation are used again, one rotation later: a fresh 1 MiB buffer is fresh pages, and the
// page faults of filling them were ~2.4 % of the control path's time (ng-cpu.js profile, settle's
// copy), where the copy itself is ~1/20 of that.

/** What a command is found by: its source, the datagram (cookie and body) and their hash. */
export interface ReplyKey {
  readonly source: string;
  readonly msg: Buffer;
  readonly h: number;
}

/** Bytes of the datagram that go into its hash: the cookie and the start of the command. */
const HASHED = 48;

const SLAB_BITS = 20, SLAB = 1 << SLAB_BITS;
/** Requests and replies bigger than this get a buffer of their own instead of slab space. */
const BIG = SLAB >> 2;
// Entry layout in `ents`: the hash, the source's number, where the request is and its length,
// where the reply is and its length (PENDING while the command runs, DEAD once it failed), and 1
// once a later request of the same source, hash and length replaced it in the index.
// A place is slab * SLAB + offset, or -1 - index in `big`.
const STRIDE = 8;
const F_H = 0, F_SRC = 1, F_QLOC = 2, F_QLEN = 3, F_LOC = 4, F_LEN = 5, F_GONE = 6;
const PENDING = -1, DEAD = -2;

/**
 * Slabs of dropped generations, used again one rotation after they were dropped (a reply handed
 * out just before the drop may still be on its way out by then), or let go if nothing took them
 * by the rotation after: a burst's memory is not kept for ever.
 *
 * The slabs come first from a reserve allocated at the start, when one is asked for. V8 counts
 * ArrayBuffer memory allocated since its last full collection against the old generation's
 * limit, so a 1 MiB slab allocated now and then under load was a full collection every ~7 MB of
 * kept replies (~6,000 commands): 27-30 of them in the first 180,000 commands of a daemon under
 * ngload, 6-8 once the pool was full, and 20,500 against 25,000 commands/s. The reserve is
 * counted once, at the start; its pages become resident only as replies fill them, and a reserve
 * slab let go gives its pages back to the kernel (`release`) and returns to the reserve.
 */
class SlabPool {
  private ready: Buffer[] = [];
  private cooling: Buffer[] = [];
  /** Reserve slabs out of use: never filled, or their pages given back. */
  private readonly spare: Buffer[] = [];
  private readonly block: ArrayBufferLike | null = null;
  /** Bytes of the reserve (0: none was asked for, or the allocator refused it). */
  readonly reserveBytes: number = 0;
  /** Slabs allocated so far beyond the reserve (the rest were used again). */
  made = 0;

  constructor(reserveBytes: number, private readonly release?: (slab: Buffer) => unknown) {
    const n = Math.floor(reserveBytes / SLAB);
    if (n === 0) return;
    let block: Buffer;
    try {
      block = Buffer.allocUnsafeSlow(n * SLAB);
    } catch {
      return; // refused (a strict overcommit policy, say): slabs as they are needed
    }
    this.block = block.buffer;
    this.reserveBytes = block.length;
    for (let i = n - 1; i >= 0; i--) this.spare.push(block.subarray(i * SLAB, (i + 1) * SLAB));
  }

  take(): Buffer {
    const s = this.ready.pop() ?? this.spare.pop();
    if (s !== undefined) return s;
    this.made++;
    return Buffer.allocUnsafeSlow(SLAB);
  }

  recycle(g: Generation): void {
    g.dropped = true;
    for (const s of this.ready) {
      if (s.buffer !== this.block) continue; // a slab of its own goes to the collector
      this.release?.(s);
      this.spare.push(s);
    }
    this.ready = this.cooling;
    this.cooling = g.slabs;
  }

  /** Generations dropped at once (a reset): their slabs wait in `cooling` for the next rotation too. */
  retire(gs: Generation[]): void {
    for (const g of gs) {
      g.dropped = true;
      for (const s of g.slabs) this.cooling.push(s);
    }
  }
}

/** One generation: an index of entries and the slabs holding their requests and replies. */
class Generation {
  private slots = new Int32Array(1024); // entry index + 1; 0 = empty
  private ents = new Int32Array(512 * STRIDE);
  private n = 0;
  readonly slabs: Buffer[] = [];
  private fill = SLAB;
  private readonly big: Buffer[] = [];
  /**
   * Pending commands' replies by entry number (entries are numbered from 0 and never reused in a
   * generation). An array, not a Map: a long-lived Map under churn keeps every value it held alive
   * through young-generation collections (media/churn-map.ts says how).
   */
  readonly pend: (Promise<Buffer> | undefined)[] = [];
  live = 0;
  bytes = 0;
  /** Dropped: its slabs went back to the pool, so a command that settles late keeps nothing. */
  dropped = false;

  constructor(private readonly pool: SlabPool) {}

  find(k: ReplyKey, src: number): number {
    const slots = this.slots, ents = this.ents, mask = slots.length - 1, len = k.msg.length;
    for (let s = k.h & mask; ; s = (s + 1) & mask) {
      const e = slots[s]! - 1;
      if (e < 0) return -1;
      const b = e * STRIDE;
      if (ents[b + F_H] === k.h && ents[b + F_SRC] === src && ents[b + F_QLEN] === len && ents[b + F_LEN] !== DEAD
          && this.same(k.msg, ents[b + F_QLOC]!, len)) return e;
    }
  }

  /** Whether the bytes kept at `loc` are `msg`'s. */
  private same(msg: Buffer, loc: number, len: number): boolean {
    if (loc < 0) return msg.equals(this.big[-1 - loc]!);
    const off = loc & (SLAB - 1);
    return msg.compare(this.slabs[loc >>> SLAB_BITS]!, off, off + len) === 0;
  }

  /**
   * A new entry, pending; the request's bytes are copied in. It takes the index slot of an entry
   * with the same source, hash and length (the same cookie and start, another body: a client that
   * reuses cookies, or one that means harm), so such requests never make a chain longer than one:
   * a hash of the whole datagram would cost what the SHA-1 did.
   */
  add(k: ReplyKey, src: number): number {
    if ((this.n + 1) * STRIDE > this.ents.length) {
      const bigger = new Int32Array(this.ents.length * 2);
      bigger.set(this.ents);
      this.ents = bigger;
    }
    if ((this.n + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const e = this.n++;
    const b = e * STRIDE, ents = this.ents;
    ents[b + F_H] = k.h; ents[b + F_SRC] = src;
    ents[b + F_QLOC] = this.keep(k.msg); ents[b + F_QLEN] = k.msg.length;
    ents[b + F_LOC] = 0; ents[b + F_LEN] = PENDING; ents[b + F_GONE] = 0;
    const slots = this.slots, mask = slots.length - 1, h = k.h, len = k.msg.length;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const x = slots[s]! - 1;
      if (x < 0) { slots[s] = e + 1; break; }
      const xb = x * STRIDE;
      if (ents[xb + F_H] === h && ents[xb + F_SRC] === src && ents[xb + F_QLEN] === len) {
        if (ents[xb + F_LEN] !== DEAD) this.live--;
        ents[xb + F_GONE] = 1;
        slots[s] = e + 1;
        break;
      }
    }
    this.live++;
    return e;
  }

  /** Copies `bytes` into slab space (or a buffer of their own): where they are. */
  private keep(bytes: Buffer): number {
    const len = bytes.length;
    this.bytes += len;
    if (len > BIG) {
      const own = Buffer.allocUnsafeSlow(len);
      own.set(bytes);
      return -this.big.push(own);
    }
    if (this.fill + len > SLAB) { this.slabs.push(this.pool.take()); this.fill = 0; }
    const at = this.fill;
    this.slabs[this.slabs.length - 1]!.set(bytes, at);
    this.fill += len;
    return ((this.slabs.length - 1) << SLAB_BITS) | at;
  }

  private place(e: number): void {
    const slots = this.slots, mask = slots.length - 1;
    let s = this.ents[e * STRIDE + F_H]! & mask;
    while (slots[s] !== 0) s = (s + 1) & mask;
    slots[s] = e + 1;
  }

  private rehash(cap: number): void {
    this.slots = new Int32Array(cap);
    for (let e = 0; e < this.n; e++) if (this.ents[e * STRIDE + F_GONE] === 0) this.place(e);
  }

  /** The reply of entry `e` (pending: its promise). */
  reply(e: number): Buffer | Promise<Buffer> | undefined {
    const b = e * STRIDE, len = this.ents[b + F_LEN]!;
    if (len === PENDING) return this.pend[e];
    const loc = this.ents[b + F_LOC]!;
    if (loc < 0) return this.big[-1 - loc];
    const slab = this.slabs[loc >>> SLAB_BITS]!, off = loc & (SLAB - 1);
    return slab.subarray(off, off + len);
  }

  /** Entry `e`'s command answered: its reply's bytes are copied in (the caller's buffer stays its own). */
  settle(e: number, reply: Buffer): void {
    const b = e * STRIDE;
    this.pend[e] = undefined;
    if (this.dropped || this.ents[b + F_GONE] === 1) return;
    this.ents[b + F_LOC] = this.keep(reply);
    this.ents[b + F_LEN] = reply.length;
    this.bytes += STRIDE * 4;
  }

  /** Entry `e`'s command failed: a retransmission runs it again. */
  kill(e: number): void {
    this.pend[e] = undefined;
    const b = e * STRIDE;
    this.ents[b + F_LEN] = DEAD;
    if (this.ents[b + F_GONE] === 0) this.live--; // a replaced entry left the count then
  }
}

/** Bytes of requests and replies one generation holds at most (by default): more rotates early. */
export const GENERATION_BYTES = 64 * 1024 * 1024;
/**
 * A reserve that holds all the slabs the default budget can have in use: the current and previous
 * generations, the dropped one cooling and the slabs ready to be used again.
 */
export const FULL_RESERVE = 4 * GENERATION_BYTES;

/** What a reply cache holds, for /metrics (summed over call threads). */
export interface ReplyCacheFigures {
  /** Replies kept for retransmissions (and commands in progress). */
  entries: number;
  /** Bytes of requests and replies kept, with their index entries. */
  bytes: number;
  /** Slab memory set aside at the start (resident only where replies filled it). */
  reserveBytes: number;
}

/** Adds `f` (another server's cache: a call thread's) to `into`. */
export function addReplyCacheFigures(into: ReplyCacheFigures, f: ReplyCacheFigures): void {
  into.entries += f.entries; into.bytes += f.bytes; into.reserveBytes += f.reserveBytes;
}

/** Memory of a ReplyCache's slabs beyond the default (slabs allocated as they are needed). */
export interface ReplyCacheMemory {
  /** Bytes of slabs allocated at the start (whole slabs; virtual memory until replies fill them). */
  reserveBytes: number;
  /** Gives a reserve slab's pages back to the kernel when it is let go (media/native-addon.ts releasePages). */
  release?: (slab: Buffer) => unknown;
}

export interface ReplyCacheOptions extends Partial<ReplyCacheMemory> {
  /** An entry lives between half of this and this (two generations). */
  ttlMs?: number;
  /** Bytes one generation holds before it is dropped early (GENERATION_BYTES). */
  maxBytes?: number;
  /** Sources both generations may know before a flood of them resets the cache. */
  maxSources?: number;
}

export class ReplyCache {
  private readonly pool: SlabPool;
  private current: Generation;
  private previous: Generation;
  /** Sources seen by both generations, numbered (proxies are few; a flood of them resets the cache). */
  private sources = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly maxBytes: number;
  private readonly maxSources: number;

  constructor(opts: ReplyCacheOptions = {}) {
    const ttlMs = opts.ttlMs ?? 60_000;
    this.maxBytes = opts.maxBytes ?? GENERATION_BYTES;
    this.maxSources = opts.maxSources ?? 65_536;
    this.pool = new SlabPool(opts.reserveBytes ?? 0, opts.release);
    this.current = new Generation(this.pool);
    this.previous = new Generation(this.pool);
    this.timer = setInterval(() => this.rotate(), ttlMs / 2);
    this.timer.unref();
  }

  /** `message` is the whole datagram; it must not change while the cache may look at it (until pending() returns). */
  static key(source: string, message: Buffer): ReplyKey {
    // FNV-1a over the first bytes and the length: cookies differ from command to command.
    const n = message.length < HASHED ? message.length : HASHED;
    let h = 0x811c9dc5 ^ message.length;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ message[i]!, 0x01000193);
    return { source, msg: message, h: h | 0 };
  }

  get(key: ReplyKey): Buffer | Promise<Buffer> | undefined {
    const src = this.sources.get(key.source);
    if (src === undefined) return undefined;
    let e = this.current.find(key, src);
    if (e >= 0) return this.current.reply(e);
    e = this.previous.find(key, src);
    return e >= 0 ? this.previous.reply(e) : undefined;
  }

  /** Registers a command in progress; duplicates arriving meanwhile wait for the same reply. */
  pending(key: ReplyKey, reply: Promise<Buffer>): void {
    let src = this.sources.get(key.source);
    if (src === undefined) {
      if (this.sources.size >= this.maxSources) this.reset();
      src = this.sources.size;
      this.sources.set(key.source, src);
    }
    const g = this.current;
    const e = g.add(key, src);
    g.pend[e] = reply;
    reply.then((r) => {
      g.settle(e, r);
      if (g === this.current && g.bytes > this.maxBytes) this.rotate();
    }, () => g.kill(e));
  }

  get size(): number { return this.current.live + this.previous.live; }

  figures(): ReplyCacheFigures {
    return { entries: this.size, bytes: this.current.bytes + this.previous.bytes, reserveBytes: this.pool.reserveBytes };
  }

  /** 1 MiB slabs allocated since the start beyond the reserve (a steady load uses the same ones again). */
  get slabsMade(): number { return this.pool.made; }

  rotate(): void {
    const dropped = this.previous;
    this.previous = this.current;
    this.current = new Generation(this.pool);
    this.pool.recycle(dropped);
  }

  private reset(): void {
    // Rare (a flood of sources): both generations are dropped, their slabs through the pool.
    this.pool.retire([this.previous, this.current]);
    this.previous = new Generation(this.pool);
    this.current = new Generation(this.pool);
    this.sources = new Map();
  }

  close(): void { clearInterval(this.timer); }
}
