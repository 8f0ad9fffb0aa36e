// Per-socket-pair stream quality for the relay: RFC 3550 statistics of the RTP that arrives,
// RTCP SR/RR bookkeeping (round trip as the relay sees it) and the figures published in the
// socket's counter slot. Imports only media/ (stats.ts, counters.ts); never sees NG or SDP.
import {
  Q_DUPLICATES, Q_JITTER_MS, Q_LOST, Q_OUT_OF_ORDER, Q_RECEIVED, Q_RTCP_CUM_LOST, Q_RTCP_FRACTION_LOST, Q_RTT_MS,
} from './counters.js';
import type { ClockRates, StreamQuality } from './plane.js';
import { estimateMos, oneWayDelayMs, parseRtcp, RtpStats, RttTracker } from './stats.js';

/**
 * One party's stream as it arrives on our RTP socket (and the RTCP about it, on the RTCP socket
 * or muxed): both sockets of a pair share one object. `slot` is the RTP socket's counter view,
 * where the figures are published for `stats()` (shared memory in a media worker).
 */
/** The RTP clock assumed for a payload type the SDP gave no rate for (G.711's). */
export const DEFAULT_CLOCK_RATE = 8000;
/** Every payload type at DEFAULT_CLOCK_RATE: the table of a pair whose plan names no other rate. */
const NO_RATES = new Uint32Array(128);

export class PairQuality {
  readonly rtp = new RtpStats(DEFAULT_CLOCK_RATE);
  /**
   * RTP clock rate per payload type, from the plan (0: not given, DEFAULT_CLOCK_RATE). NO_RATES,
   * shared and never written, until a plan names another rate: a 512-byte table is an ArrayBuffer
   * of its own outside the heap, allocated per socket pair (two per offer) for G.711 calls that
   * never need it.
   */
  private clockRates = NO_RATES;
  /** Sender reports this party sent, as they passed us (for the peer's receiver reports). */
  readonly rtt = new RttTracker();
  // For RTCP generation (rtcp-gen.ts): the party's last RTCP and SR (monotonic ms, NTP middle 32
  // bits), and the last RTP timestamp and payload octets of its stream (what we forward on).
  lastRtcpMs = 0;
  lastSrNtp = 0;
  lastSrAtMs = 0;
  lastTs = 0;
  lastTsAtMs = 0;
  payloadOctets = 0;

  constructor(private readonly slot: Float64Array) {}

  /** Payload types and Hz of the party's codecs (SocketPlan.clockRates pairs). */
  setClockRates(rates: ClockRates | null): void {
    let own = this.clockRates === NO_RATES ? null : this.clockRates.fill(0);
    if (rates === null) return;
    for (let i = 0; i + 1 < rates.length; i += 2) {
      const n = rates[i]!, hz = rates[i + 1]!;
      if (n < 0 || n >= 128 || hz <= 0) continue;
      // 8 kHz needs no table of its own; with one, it is written too (a later pair overrides an earlier).
      if (own === null && hz === DEFAULT_CLOCK_RATE) continue;
      (own ??= this.clockRates = new Uint32Array(128))[n] = hz;
    }
  }

  /** Once per RTP packet (already decrypted): allocation-free. `nowMs` is on a monotonic clock. */
  rtpPacket(buf: Uint8Array, nowMs: number): void {
    const r = this.rtp;
    // The packet's codec decides the timestamp clock (Opus 48 kHz, telephone-event 8 kHz, video 90 kHz).
    const hz = this.clockRates[buf[1]! & 0x7f]! || DEFAULT_CLOCK_RATE;
    if (hz !== r.clockRate) r.setClockRate(hz);
    r.update(buf, nowMs);
    if (buf.length >= 12) {
      this.lastTs = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
      this.lastTsAtMs = nowMs;
      // RFC 3550 6.4.1: the octet count is payload only (no header, CSRCs or padding counted here).
      const n = buf.length - 12 - 4 * (buf[0]! & 0x0f);
      if (n > 0) this.payloadOctets += n;
    }
    const c = this.slot;
    c[Q_RECEIVED] = r.received;
    c[Q_LOST] = r.lost;
    c[Q_DUPLICATES] = r.duplicates;
    c[Q_OUT_OF_ORDER] = r.outOfOrder;
    c[Q_JITTER_MS] = r.jitterMs;
  }

  /**
   * An RTCP packet from this party. Its SRs are noted here; its report blocks are about the
   * stream the peer sends (`peer`, the quality of the peer's pair, when known).
   */
  rtcpPacket(buf: Buffer, nowMs: number, peer: PairQuality | null): void {
    this.lastRtcpMs = nowMs; // any RTCP from the party (an empty RR too): we generate none for it
    const info = parseRtcp(buf); // RTCP is a few packets a second: plain objects are fine
    if (info === null) return;
    for (const s of info.senders) {
      if (s.ssrc !== this.rtp.ssrc) continue;
      this.rtt.noteSenderReport(s.ntpMiddle, nowMs);
      this.lastSrNtp = s.ntpMiddle; this.lastSrAtMs = nowMs;
    }
    if (peer === null) return;
    for (const b of info.reports) {
      if (b.ssrc !== peer.rtp.ssrc || peer.rtp.received === 0) continue;
      peer.rtp.applyReport(b, peer.rtt.rttMs(b, nowMs));
      const c = peer.slot;
      c[Q_RTCP_FRACTION_LOST] = b.fractionLost;
      c[Q_RTCP_CUM_LOST] = b.cumulativeLost;
      if (peer.rtp.rttMs >= 0) c[Q_RTT_MS] = peer.rtp.rttMs;
    }
  }
}

/** The figures of an RTP socket's slot as StreamQuality (read side; main thread or worker). */
export function readQuality(c: Float64Array): StreamQuality | null {
  const received = c[Q_RECEIVED]!;
  const lost = c[Q_LOST]!;
  if (received === 0 && lost === 0) return null;
  const rtt = c[Q_RTT_MS]!;
  const jitterMs = c[Q_JITTER_MS]!;
  const expected = received + lost;
  return {
    received, lost, duplicates: c[Q_DUPLICATES]!, outOfOrder: c[Q_OUT_OF_ORDER]!,
    jitterMs: Math.round(jitterMs * 1000) / 1000,
    rtcpFractionLost: c[Q_RTCP_FRACTION_LOST]! < 0 ? null : c[Q_RTCP_FRACTION_LOST]!,
    rtcpCumulativeLost: c[Q_RTCP_FRACTION_LOST]! < 0 ? null : c[Q_RTCP_CUM_LOST]!,
    rttMs: rtt < 0 ? null : Math.round(rtt * 10) / 10,
    // The same estimate as stats.ts streamMos, from the published figures.
    mos: Math.round(estimateMos((100 * lost) / expected, oneWayDelayMs(Math.max(0, rtt), jitterMs)) * 100) / 100,
  };
}
