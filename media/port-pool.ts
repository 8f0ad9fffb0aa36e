// Media port pool for one local address: even RTP port, RTCP on the next odd one.
// Must not import anything of ours. Ports come back only when their sockets have closed.

export class PortPool {
  private readonly free: number[] = [];
  /** 1 where the port is taken (a bitmap, not a Set: no hash tables for the GC to chain, see churn-map.ts). */
  private readonly used: Uint8Array;
  readonly total: number;

  constructor(min: number, max: number) {
    this.used = new Uint8Array(Math.max(0, max) + 1);
    const first = min % 2 === 0 ? min : min + 1;
    for (let p = first; p + 1 <= max; p += 2) this.free.push(p);
    // Start at a random place so a restart does not hand out the ports of the calls it just lost.
    const shift = this.free.length ? Math.floor(Math.random() * this.free.length) : 0;
    this.free.push(...this.free.splice(0, shift));
    this.total = this.free.length;
  }

  get available(): number { return this.free.length; }

  /** The next free even port, or null when the range is exhausted. FIFO, so a freed port rests longest. */
  take(): number | null {
    const p = this.free.shift();
    if (p === undefined) return null;
    this.used[p] = 1;
    return p;
  }

  /** The free port `i` places from the head (what take() returns after i more takes), or undefined. */
  peek(i: number): number | undefined { return this.free[i]; }

  /** Back to the end of the queue. Releasing a port that is not taken is a no-op. */
  release(port: number): void {
    if (this.used[port] !== 1) return;
    this.used[port] = 0;
    this.free.push(port);
  }
}
