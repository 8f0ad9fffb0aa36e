// Per-SSRC packet-index tracking for SRTP/SRTCP: rollover-counter estimation (RFC 3711 §3.3.1,
// Appendix A) and the 64-packet replay window (§3.3.2). Pure arithmetic; imports nothing.

/** Highest index seen for one SSRC, and which of the 63 indices below it were seen too. */
export class IndexWindow {
  /** Highest authenticated index (48-bit for SRTP, 31-bit for SRTCP), exact in a JS number. */
  top: number;
  // Bit k set = index top-k seen; 64 bits kept as two uint32 so no BigInt on the packet path.
  private lo = 1;
  private hi = 0;

  constructor(first: number) {
    this.top = first;
  }

  /** False for an index already seen or more than 63 below the highest (RFC 3711 §3.3.2). */
  fresh(index: number): boolean {
    const d = this.top - index;
    if (d < 0) return true;
    if (d >= 64) return false;
    return d < 32 ? (this.lo & (1 << d)) === 0 : (this.hi & (1 << (d - 32))) === 0;
  }

  /** Records an authenticated index; call only after `fresh` and the integrity check passed. */
  accept(index: number): void {
    const d = index - this.top;
    if (d > 0) {
      if (d >= 64) {
        this.hi = 0;
        this.lo = 0;
      } else if (d >= 32) {
        this.hi = this.lo << (d - 32);
        this.lo = 0;
      } else {
        this.hi = (this.hi << d) | (this.lo >>> (32 - d));
        this.lo = this.lo << d;
      }
      this.lo |= 1;
      this.top = index;
    } else if (-d < 32) {
      this.lo |= 1 << -d;
    } else {
      this.hi |= 1 << (-d - 32);
    }
  }
}

/**
 * RFC 3711 Appendix A: the packet index a 16-bit sequence number most likely stands for, given
 * the highest index seen so far. Negative when the guess is "before the first packet"
 * (ROC would be -1): such a packet cannot be authenticated and is dropped.
 */
export function estimateIndex(top: number, seq: number): number {
  const roc = Math.floor(top / 65536);
  const sl = top - roc * 65536;
  let v = roc;
  if (sl < 32768) {
    if (seq - sl > 32768) v = roc - 1;
  } else if (sl - 32768 > seq) {
    v = roc + 1;
  }
  return v * 65536 + seq;
}
