// Retransmission cache: a proxy that got no reply in time sends the same datagram again; it
// must get the first reply and the command must not run twice. Keyed on source + cookie +
// body (rtpengine keys on the cookie alone and so has answered one command with another's
// reply). Two generations, swapped every `ttlMs / 2`: an entry lives between ttl/2 and ttl, by
// default 30 to 60 s as in rtpengine, so a proxy's slowest retransmission still finds it.
//
// Every command's reply is kept for that long, so the cache is built to be no work for the
// garbage collector: the index is an open-addressing table in typed arrays and the replies are
// copied into 1 MiB slabs, so an entry is a few integers and bytes, not a Map entry, a key string
// and a Buffer that all survive young-generation collections and are promoted. Against a Map of
// string keys to Buffer copies (ng-cpu.js, 90,000 commands): heap after a mark-compact 20 MB
// instead of 38-52 MB; CPU per command the same within this machine's noise (the cache as a whole,
// SHA-1 included, is ~3-8 us of a command's ~40 us there).
import crypto from 'node:crypto';

// One-shot crypto.hash (Node >= 20.12) skips the Hash object: 0.7 µs against 1.2 µs per 700-byte
// offer here. SHA-1 stays: a collision must never answer one command with another's reply.
const oneShot = (crypto as { hash?: (alg: string, data: Buffer, enc: 'binary') => string }).hash;
const digest = oneShot
  ? (m: Buffer): string => oneShot('sha1', m, 'binary')
  : (m: Buffer): string => crypto.createHash('sha1').update(m).digest('binary');

/** What a command is found by: its source and the SHA-1 of the whole datagram (cookie and body). */
export interface ReplyKey {
  readonly source: string;
  readonly d0: number; readonly d1: number; readonly d2: number; readonly d3: number; readonly d4: number;
}

const word = (s: string, i: number): number =>
  s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24);

const SLAB_BITS = 20, SLAB = 1 << SLAB_BITS;
/** Replies bigger than this get a buffer of their own instead of slab space. */
const BIG = SLAB >> 2;
// Entry layout in `ents`: the digest's five words, the source's number, where the reply is
// (slab * SLAB + offset; or -1 - index in `big`), its length (PENDING while the command runs, DEAD
// once it failed).
const STRIDE = 8;
const F_SRC = 5, F_LOC = 6, F_LEN = 7;
const PENDING = -1, DEAD = -2;

/** One generation: an index of entries and the slabs holding their replies. */
class Generation {
  private slots = new Int32Array(1024); // entry index + 1; 0 = empty
  private ents = new Int32Array(512 * STRIDE);
  private n = 0;
  private readonly slabs: Buffer[] = [];
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

  find(k: ReplyKey, src: number): number {
    const slots = this.slots, ents = this.ents, mask = slots.length - 1;
    for (let s = k.d0 & mask; ; s = (s + 1) & mask) {
      const e = slots[s]! - 1;
      if (e < 0) return -1;
      const b = e * STRIDE;
      if (ents[b] === k.d0 && ents[b + 1] === k.d1 && ents[b + 2] === k.d2 && ents[b + 3] === k.d3 &&
          ents[b + 4] === k.d4 && ents[b + F_SRC] === src && ents[b + F_LEN] !== DEAD) return e;
    }
  }

  /** A new entry, pending. */
  add(k: ReplyKey, src: number): number {
    if ((this.n + 1) * STRIDE > this.ents.length) {
      const bigger = new Int32Array(this.ents.length * 2);
      bigger.set(this.ents);
      this.ents = bigger;
    }
    if ((this.n + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const e = this.n++;
    const b = e * STRIDE, ents = this.ents;
    ents[b] = k.d0; ents[b + 1] = k.d1; ents[b + 2] = k.d2; ents[b + 3] = k.d3; ents[b + 4] = k.d4;
    ents[b + F_SRC] = src; ents[b + F_LOC] = 0; ents[b + F_LEN] = PENDING;
    this.place(e);
    this.live++;
    return e;
  }

  private place(e: number): void {
    const slots = this.slots, mask = slots.length - 1;
    let s = this.ents[e * STRIDE]! & mask;
    while (slots[s] !== 0) s = (s + 1) & mask;
    slots[s] = e + 1;
  }

  private rehash(cap: number): void {
    this.slots = new Int32Array(cap);
    for (let e = 0; e < this.n; e++) this.place(e);
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
    const b = e * STRIDE, len = reply.length;
    this.pend[e] = undefined;
    if (len > BIG) {
      const own = Buffer.allocUnsafeSlow(len);
      reply.copy(own);
      this.big.push(own);
      this.ents[b + F_LOC] = -this.big.length;
    } else {
      if (this.fill + len > SLAB) { this.slabs.push(Buffer.allocUnsafeSlow(SLAB)); this.fill = 0; }
      reply.copy(this.slabs[this.slabs.length - 1]!, this.fill);
      this.ents[b + F_LOC] = ((this.slabs.length - 1) << SLAB_BITS) | this.fill;
      this.fill += len;
    }
    this.ents[b + F_LEN] = len;
    this.bytes += len + STRIDE * 4;
  }

  /** Entry `e`'s command failed: a retransmission runs it again. */
  kill(e: number): void {
    this.pend[e] = undefined;
    this.ents[e * STRIDE + F_LEN] = DEAD;
    this.live--;
  }
}

export class ReplyCache {
  private current = new Generation();
  private previous = new Generation();
  /** Sources seen by both generations, numbered (proxies are few; a flood of them resets the cache). */
  private sources = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(ttlMs = 60_000, private readonly maxBytes = 64 * 1024 * 1024, private readonly maxSources = 65_536) {
    this.timer = setInterval(() => this.rotate(), ttlMs / 2);
    this.timer.unref();
  }

  static key(source: string, message: Buffer): ReplyKey {
    const d = digest(message);
    return { source, d0: word(d, 0), d1: word(d, 4), d2: word(d, 8), d3: word(d, 12), d4: word(d, 16) };
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

  rotate(): void {
    this.previous = this.current;
    this.current = new Generation();
  }

  private reset(): void {
    this.previous = new Generation();
    this.current = new Generation();
    this.sources = new Map();
  }

  close(): void { clearInterval(this.timer); }
}
