// A Map for long-lived tables whose keys come and go all the time (calls by call-id, sockets by
// id, commands in flight): backed by a null-prototype object in dictionary mode, not by a `Map`.
//
// Why: when a V8 `Map` or `Set` grows, shrinks or compacts its deleted entries, it allocates a new
// hash table and leaves the old one pointing at it (for live iterators) with its entries as they
// were. A table that lives long is in the old generation, so its obsolete copies are too, and
// the young-generation collector takes every old-to-young pointer as a root without asking
// whether the old object is still reachable: each obsolete table keeps its successor alive, that
// one the entries it held (whole calls), then its own successor, and so on until the next full
// collection. Under NG load every call that passed through such a table outlived two scavenges
// and was promoted: these tables as ChurnMaps cut the bytes promoted per command from ~2,975 to
// ~1,150 in the in-process control path (ng-cpu.js) and from ~4,000 to ~1,100 in the daemon,
// whose mark-compacts went from 4 to 1-2 per 24,000 commands (most of the rest was a WeakMap,
// see offer-answer.ts's OFFER_PARSE).
// A churning `Map` of 16 live entries promoted 700 MB over 400,000 replacements here, an object
// used as a dictionary 12 MB (/tmp experiment, --trace-gc-nvp). A dictionary-mode object's store
// is dropped, not chained, when it is resized, and a deleted entry's slot is cleared.
//
// Iteration follows object key order (integer-like keys ascending, then the others in insertion
// order), not the pure insertion order of a `Map`; use it where no caller depends on order.

type Key = string | number;

export class ChurnMap<K extends Key, V> {
  private dict: Record<string, V> = Object.create(null) as Record<string, V>;
  private count = 0;

  /** `numeric`: the keys are numbers (iteration gives them back as numbers). */
  constructor(private readonly numeric = false) {}

  get size(): number { return this.count; }

  get(key: K): V | undefined { return this.dict[key as string]; }

  has(key: K): boolean { return (key as string) in this.dict; }

  set(key: K, value: V): this {
    const d = this.dict;
    if (!((key as string) in d)) this.count++;
    d[key as string] = value;
    return this;
  }

  delete(key: K): boolean {
    const d = this.dict;
    if (!((key as string) in d)) return false;
    delete d[key as string];
    this.count--;
    return true;
  }

  clear(): void {
    this.dict = Object.create(null) as Record<string, V>;
    this.count = 0;
  }

  *keys(): IterableIterator<K> {
    for (const k in this.dict) yield (this.numeric ? Number(k) : k) as K;
  }

  *values(): IterableIterator<V> {
    const d = this.dict;
    for (const k in d) yield d[k]!;
  }

  *entries(): IterableIterator<[K, V]> {
    const d = this.dict;
    for (const k in d) yield [(this.numeric ? Number(k) : k) as K, d[k]!];
  }

  [Symbol.iterator](): IterableIterator<[K, V]> { return this.entries(); }
}
