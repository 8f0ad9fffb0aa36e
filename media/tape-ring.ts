// A ring in shared memory that carries worker-protocol tapes from the main thread to one media
// worker without waking it: one writer (the main thread), one reader (the worker).
//
// Why: every postMessage wakes the worker (libuv writes its event fd, the kernel schedules the
// thread), and under NG load every command posted one: ~18,000 wake-ups a second, each a context
// switch on the worker's core and a slice of the media thread's time taken from the packet path.
// Tapes of numbers, strings and nulls (an offer's or answer's plans, a delete's closes, the
// ahead-opens) are written here instead, and the worker reads them when it wakes anyway: before
// it handles a datagram (so a plan always precedes the first packet its NG reply announced), when
// something is posted to it, or when the main thread rings it a little later (WorkerMediaPlane).
// Tapes with objects in them (certificates, recordings, SRTP and ICE plans) still go by
// postMessage, each carrying the ring's write position when it was posted: the worker first reads
// the ring up to there, so the worker sees every message in the order the main thread wrote it.
//
// Layout: `ctrl` (Int32) holds the write and read positions, counted in slots and wrapping at
// 2^32 (positions compare by their difference); `slots` (Float64) is the ring, a power of two
// long. A record is its length in slots, then its values: a number as TAG_NUMBER and the number,
// a string as TAG_STRING, its length and one slot per UTF-16 code unit, null as TAG_NULL.
// Imports nothing.

const W = 0, R = 1;
const TAG_NUMBER = 0, TAG_STRING = 1, TAG_NULL = 2;

export interface TapeRingInit { ctrl: SharedArrayBuffer; slots: SharedArrayBuffer }

/** Ring capacity in slots (8 bytes each): 64 Ki slots, ~1,000 calls' plans between two readings. */
export const RING_SLOTS = 1 << 16;

export class TapeRing {
  private readonly ctrl: Int32Array;
  private readonly slots: Float64Array;
  private readonly mask: number;

  constructor(readonly init: TapeRingInit) {
    this.ctrl = new Int32Array(init.ctrl);
    this.slots = new Float64Array(init.slots);
    this.mask = this.slots.length - 1;
    if ((this.slots.length & this.mask) !== 0) throw new Error('tape ring: length must be a power of two');
  }

  static create(slots = RING_SLOTS): TapeRing {
    return new TapeRing({ ctrl: new SharedArrayBuffer(8), slots: new SharedArrayBuffer(8 * slots) });
  }

  /** Where the writer is: what a postMessage posted now carries. */
  get writePos(): number { return Atomics.load(this.ctrl, W); }

  /** Whether everything written has been read. */
  get empty(): boolean { return Atomics.load(this.ctrl, W) === Atomics.load(this.ctrl, R); }

  /** Slots written and not read yet. */
  get used(): number { return (Atomics.load(this.ctrl, W) - Atomics.load(this.ctrl, R)) >>> 0; }

  get capacity(): number { return this.slots.length; }

  /**
   * Writer: appends the tape as one record; false, with nothing written, when it holds something
   * other than numbers, strings and nulls, or when the ring has no room for it.
   */
  write(tape: readonly unknown[]): boolean {
    let size = 1;
    for (let i = 0; i < tape.length; i++) {
      const v = tape[i];
      if (typeof v === 'number') size += 2;
      else if (typeof v === 'string') size += 2 + v.length;
      else if (v === null) size += 1;
      else return false;
    }
    const w = Atomics.load(this.ctrl, W);
    if (size > this.slots.length - ((w - Atomics.load(this.ctrl, R)) >>> 0)) return false;
    const s = this.slots, mask = this.mask;
    let p = w;
    s[p++ & mask] = size - 1;
    for (let i = 0; i < tape.length; i++) {
      const v = tape[i];
      if (typeof v === 'number') { s[p++ & mask] = TAG_NUMBER; s[p++ & mask] = v; }
      else if (typeof v === 'string') {
        s[p++ & mask] = TAG_STRING; s[p++ & mask] = v.length;
        for (let k = 0; k < v.length; k++) s[p++ & mask] = v.charCodeAt(k);
      } else s[p++ & mask] = TAG_NULL;
    }
    // The store publishes the slots written before it (Atomics are sequentially consistent).
    Atomics.store(this.ctrl, W, p | 0);
    return true;
  }

  /** Reader: hands each record written before position `until` (default: all) to `each`, in order. */
  read(each: (tape: unknown[]) => void, until: number = Atomics.load(this.ctrl, W)): void {
    const s = this.slots, mask = this.mask;
    let r = Atomics.load(this.ctrl, R);
    while (((until - r) | 0) > 0) {
      const end = (r + 1 + s[r & mask]!) | 0;
      r = (r + 1) | 0;
      const tape: unknown[] = [];
      while (r !== end) {
        const tag = s[r++ & mask];
        if (tag === TAG_NUMBER) tape.push(s[r++ & mask]);
        else if (tag === TAG_STRING) {
          const n = s[r++ & mask]!;
          let str = '';
          for (let k = 0; k < n; k++) str += String.fromCharCode(s[r++ & mask]!);
          tape.push(str);
        } else tape.push(null);
        r |= 0;
      }
      // Released before the record is handled: the writer may reuse its slots at once.
      Atomics.store(this.ctrl, R, r);
      each(tape);
    }
  }
}
