// Per-stream RTP statistics (RFC 3550 Appendix A), RTCP report parsing and an MOS estimate.
// Pure code for the packet path: imports nothing of ours, never sees NG or SDP.

const SEQ_MOD = 0x10000;
/** RFC 3550 A.1: a forward jump under this is taken as loss, not as a restart. */
const MAX_DROPOUT = 3000;
/** RFC 3550 A.1: a step back of at most this is a late packet, not a restart. */
const MAX_MISORDER = 100;
/** Sequence numbers behind the highest one whose arrival we remember, to tell duplicates. */
const WINDOW = 128;

/**
 * One RTP stream as received. `update()` runs once per packet: plain fields, no allocation.
 * Probation (A.1's MIN_SEQUENTIAL) is off: the first packet starts the stream, because a relay
 * must report on short calls too. Duplicates are not counted as received, so `lost` is exact
 * (A.3 counts them and lets loss go down or negative instead).
 */
export class RtpStats {
  packets = 0;
  bytes = 0;
  /** Packets with a well-formed RTP header that went into the sequence figures. */
  received = 0;
  duplicates = 0;
  /** Late packets (behind the highest sequence number), not duplicates; they are not lost. */
  outOfOrder = 0;
  /** Jumps that restarted the sequence (A.1 "bad_seq" twice, or a new SSRC). */
  restarts = 0;
  ssrc = 0;
  payloadType = -1;
  /** RFC 3550 A.8 interarrival jitter, in timestamp units (float: the ÷16 is kept exact). */
  jitter = 0;
  lastArrivalMs = 0;

  // RFC 3550 A.1 source state.
  private started = false;
  private maxSeq = 0;
  private cycles = 0;
  private baseSeq = 0;
  private badSeq = SEQ_MOD + 1;
  /** Loss of earlier sequence runs (before a restart), so `lost` never goes back. */
  private lostBefore = 0;
  private receivedRun = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  // A.8 state: arrival in ms and RTP timestamp of the previous packet.
  private prevArrivalMs = 0;
  private prevTs = 0;
  private hasPrev = false;
  /** Bit i set: sequence (maxSeq - k) seen, where i = that sequence mod WINDOW. */
  private readonly seen = new Uint32Array(WINDOW / 32);

  // Figures from the far end's RTCP reports about this stream (RFC 3550 6.4.1); -1: none yet.
  rtcpFractionLost = -1;
  rtcpCumulativeLost = -1;
  rtcpJitter = -1;
  rttMs = -1;

  /** @param clockRate RTP clock of the stream's codec (8000 for G.711), for jitter in ms. */
  constructor(public clockRate = 8000) {}

  /**
   * The stream went on with a codec of another RTP clock: the jitter keeps its value in time, and
   * the next packet starts a new A.8 difference (timestamps of two clocks do not compare).
   */
  setClockRate(hz: number): void {
    if (hz <= 0 || hz === this.clockRate) return;
    this.jitter = (this.jitter * hz) / this.clockRate;
    this.clockRate = hz;
    this.hasPrev = false;
  }

  /** Accounts one packet; `arrivalMs` is the receive time on any monotonic millisecond clock. */
  update(buf: Uint8Array, arrivalMs: number): void {
    this.packets++;
    this.bytes += buf.length;
    this.lastArrivalMs = arrivalMs;
    // RFC 3550 5.1: version 2, 12 fixed bytes; anything else carries no sequence number.
    if (buf.length < 12 || (buf[0]! & 0xc0) !== 0x80) return;
    const seq = (buf[2]! << 8) | buf[3]!;
    const ts = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
    const ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
    this.payloadType = buf[1]! & 0x7f;
    if (!this.started || ssrc !== this.ssrc) {
      if (this.started) this.restarts++;
      this.ssrc = ssrc;
      this.restart(seq);
    } else {
      const udelta = (seq - this.maxSeq) & 0xffff;
      if (udelta === 0) { this.duplicates++; return; }
      if (udelta < MAX_DROPOUT) {
        if (seq < this.maxSeq) this.cycles += SEQ_MOD; // wrapped
        this.advance(udelta);
        this.maxSeq = seq;
      } else if (udelta <= SEQ_MOD - MAX_MISORDER) {
        // A big jump: the sender restarted, or junk. Two in a row (A.1 bad_seq) restart the run.
        if (seq !== this.badSeq) { this.badSeq = (seq + 1) & 0xffff; return; }
        this.restarts++;
        this.restart(seq);
      } else {
        // A late packet: duplicate if we saw it, else out of order (and so not lost).
        const back = SEQ_MOD - udelta;
        if (back < WINDOW && this.wasSeen(seq)) { this.duplicates++; return; }
        if (back < WINDOW) this.mark(seq);
        this.outOfOrder++;
      }
    }
    this.receivedRun++;
    this.received++;
    // RFC 3550 A.8: D = (Rj - Ri) - (Sj - Si) in timestamp units; J += (|D| - J) / 16.
    if (this.hasPrev) {
      const tsDelta = (ts - this.prevTs) | 0; // signed: survives the 32-bit wrap
      let d = ((arrivalMs - this.prevArrivalMs) * this.clockRate) / 1000 - tsDelta;
      if (d < 0) d = -d;
      this.jitter += (d - this.jitter) / 16;
    }
    this.prevArrivalMs = arrivalMs;
    this.prevTs = ts;
    this.hasPrev = true;
  }

  private restart(seq: number): void {
    // Loss so far stays counted; the new run starts from this packet (A.1 init_seq).
    if (this.started) this.lostBefore += Math.max(0, this.expectedRun() - this.receivedRun);
    this.started = true;
    this.baseSeq = seq;
    this.maxSeq = seq;
    this.cycles = 0;
    this.badSeq = SEQ_MOD + 1;
    this.receivedRun = 0;
    this.expectedPrior = 0;
    this.receivedPrior = 0;
    this.hasPrev = false;
    this.seen.fill(0);
    this.mark(seq);
  }

  /** The window moves `n` forward: forget what falls out, note the new highest. */
  private advance(n: number): void {
    if (n >= WINDOW) this.seen.fill(0);
    else for (let i = 1; i <= n; i++) this.clear((this.maxSeq + i) & 0xffff);
    this.mark((this.maxSeq + n) & 0xffff);
  }

  private mark(seq: number): void { this.seen[(seq % WINDOW) >>> 5]! |= 1 << (seq & 31); }
  private clear(seq: number): void { this.seen[(seq % WINDOW) >>> 5]! &= ~(1 << (seq & 31)); }
  private wasSeen(seq: number): boolean { return (this.seen[(seq % WINDOW) >>> 5]! & (1 << (seq & 31))) !== 0; }

  private expectedRun(): number { return this.started ? this.cycles + this.maxSeq - this.baseSeq + 1 : 0; }

  /** Highest sequence number with its wrap count (RFC 3550 A.1 extended). */
  get extendedMaxSeq(): number { return this.cycles + this.maxSeq; }
  /** RFC 3550 A.3 cumulative loss (expected - received), over all runs; never negative. */
  get lost(): number { return this.lostBefore + Math.max(0, this.expectedRun() - this.receivedRun); }
  get jitterMs(): number { return (this.jitter * 1000) / this.clockRate; }

  /**
   * RFC 3550 A.3 fraction lost since the previous call (what an RR would carry), 0..1, and
   * moves the interval on. Call once per report period, not per packet.
   */
  fractionLostInterval(): number {
    const expected = this.expectedRun();
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.receivedRun - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.receivedRun;
    const lostInterval = expectedInterval - receivedInterval;
    return expectedInterval <= 0 || lostInterval <= 0 ? 0 : lostInterval / expectedInterval;
  }

  /** Takes what the far end reported about this stream (an RTCP report block), and an RTT. */
  applyReport(block: ReportBlock, rttMs: number | null): void {
    this.rtcpFractionLost = block.fractionLost;
    this.rtcpCumulativeLost = block.cumulativeLost;
    this.rtcpJitter = block.jitter;
    if (rttMs !== null) this.rttMs = rttMs;
  }
}

// ---------------------------------------------------------------------------------------------
// RTCP (RFC 3550 6.4). Reports arrive every few seconds, so plain objects are fine here.

export interface SenderInfo {
  ssrc: number;
  /** Middle 32 bits of the NTP timestamp: what a receiver echoes as LSR. */
  ntpMiddle: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

export interface ReportBlock {
  /** Who sent the report. */
  reporterSsrc: number;
  /** The stream it reports on. */
  ssrc: number;
  /** 0..1 (the 8-bit fixed-point field / 256). */
  fractionLost: number;
  /** Signed 24 bits: duplicates can make it negative. */
  cumulativeLost: number;
  extendedHighestSeq: number;
  /** Interarrival jitter in timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP time of the last SR received from `ssrc`; 0: none. */
  lsr: number;
  /** Delay since that SR, in 1/65536 s. */
  dlsr: number;
}

export interface RtcpInfo { senders: SenderInfo[]; reports: ReportBlock[] }

/** Parses the SRs and RRs of a (compound) RTCP packet; null when it is not well-formed. */
export function parseRtcp(buf: Buffer): RtcpInfo | null {
  const out: RtcpInfo = { senders: [], reports: [] };
  let off = 0;
  while (off + 4 <= buf.length) {
    // RFC 3550 6.4.1: V=2, RC in the low 5 bits, length in 32-bit words minus one.
    if ((buf[off]! & 0xc0) !== 0x80) return null;
    const rc = buf[off]! & 0x1f;
    const pt = buf[off + 1]!;
    const end = off + (buf.readUInt16BE(off + 2) + 1) * 4;
    if (end > buf.length) return null;
    if (pt === 200 || pt === 201) {
      const reporter = buf.readUInt32BE(off + 4);
      let p = off + 8;
      if (pt === 200) {
        if (p + 20 > end) return null;
        out.senders.push({
          ssrc: reporter, ntpMiddle: buf.readUInt32BE(p + 2), rtpTimestamp: buf.readUInt32BE(p + 8),
          packetCount: buf.readUInt32BE(p + 12), octetCount: buf.readUInt32BE(p + 16),
        });
        p += 20;
      }
      if (p + rc * 24 > end) return null;
      for (let i = 0; i < rc; i++, p += 24) {
        out.reports.push({
          reporterSsrc: reporter, ssrc: buf.readUInt32BE(p), fractionLost: buf[p + 4]! / 256,
          cumulativeLost: buf.readIntBE(p + 5, 3), extendedHighestSeq: buf.readUInt32BE(p + 8),
          jitter: buf.readUInt32BE(p + 12), lsr: buf.readUInt32BE(p + 16), dlsr: buf.readUInt32BE(p + 20),
        });
      }
    }
    off = end;
  }
  return out.senders.length + out.reports.length > 0 ? out : null;
}

/**
 * Round-trip time as a relay sees it. RFC 3550 6.4.1 has the SR's sender compute A - LSR - DLSR
 * on its own clock; we are not that sender, so we note when each SR passed us (our clock) and
 * take (RR arrival - SR arrival - DLSR): the round trip between us and the reporting party,
 * without trusting anyone's wall clock. Remembers the last few SRs of each direction.
 */
export class RttTracker {
  private readonly lsr = new Uint32Array(8);
  private readonly atMs = new Float64Array(8);
  private next = 0;

  /** An SR passed the relay at `arrivalMs`. */
  noteSenderReport(ntpMiddle: number, arrivalMs: number): void {
    this.lsr[this.next] = ntpMiddle;
    this.atMs[this.next] = arrivalMs;
    this.next = (this.next + 1) % this.lsr.length;
  }

  /** RTT in ms for a report block arriving at `arrivalMs`, or null if its SR was not seen. */
  rttMs(block: ReportBlock, arrivalMs: number): number | null {
    if (block.lsr === 0) return null; // RFC 3550 6.4.1: no SR received yet
    for (let i = 0; i < this.lsr.length; i++) {
      if (this.lsr[i] !== block.lsr || this.atMs[i] === 0) continue;
      const rtt = arrivalMs - this.atMs[i]! - (block.dlsr * 1000) / 65536;
      return rtt < 0 ? 0 : rtt;
    }
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// MOS estimate: a simplified E-model (ITU-T G.107, 06/2015).
//
// R = Ro - Is - Id - Ie,eff + A with every input at its G.107 default except delay and loss,
// which gives Ro - Is = 93.2 (G.107 7.1, table 3 defaults) and A = 0.
// Id, the delay impairment, uses the usual fit of G.107's Idd for default echo settings
// (Cole & Rosenbluth, "Voice over IP performance monitoring", ACM CCR 2001):
//   Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3), d = one-way mouth-to-ear delay in ms.
// Ie,eff (G.107 eq. 7-29) = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl), random loss (BurstR = 1),
// Ie and Bpl from ITU-T G.113 Appendix I (G.711 with packet loss concealment: Ie 0, Bpl 25.1).
// MOS from R: G.107 Annex B (eq. B-4), clamped to 1..4.5.

export interface CodecImpairment { ie: number; bpl: number }
export const G711_PLC: CodecImpairment = { ie: 0, bpl: 25.1 };

/** One-way delay we assume a phone adds on top of half the RTT: a jitter buffer of twice the jitter, plus a 20 ms packet. */
export function oneWayDelayMs(rttMs: number, jitterMs: number): number {
  return Math.max(0, rttMs) / 2 + 2 * Math.max(0, jitterMs) + 20;
}

export function rFactor(lossPercent: number, delayMs: number, codec: CodecImpairment = G711_PLC): number {
  const d = Math.max(0, delayMs);
  const id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
  const ppl = Math.min(100, Math.max(0, lossPercent));
  const ieEff = codec.ie + ((95 - codec.ie) * ppl) / (ppl + codec.bpl);
  return 93.2 - id - ieEff;
}

export function mosFromR(r: number): number {
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  // The cubic dips a hair below 1 just above R = 0; the scale starts at 1.
  return Math.max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6);
}

/** MOS-CQE estimate for a stream with this loss (percent) and one-way delay (ms). */
export function estimateMos(lossPercent: number, delayMs: number, codec: CodecImpairment = G711_PLC): number {
  return mosFromR(rFactor(lossPercent, delayMs, codec));
}

/**
 * MOS of a stream as the relay sees it: loss counted from sequence numbers, delay from the
 * RTCP round trip (when the parties send RTCP) and the jitter. Null before any RTP.
 */
export function streamMos(s: RtpStats, codec: CodecImpairment = G711_PLC): number | null {
  const expected = s.received + s.lost;
  if (expected === 0) return null;
  return estimateMos((100 * s.lost) / expected, oneWayDelayMs(Math.max(0, s.rttMs), s.jitterMs), codec);
}
