// RTCP generation (generate-RTCP): sender and receiver reports the relay writes towards a party
// from its own statistics, when that party's peer sends no RTCP (a plain phone often sends none,
// and a browser's quality stats and bandwidth estimation need reports). RFC 3550 §6.4.
// Pure code: builds packets from PairQuality figures; the relay's one timer decides when and sends
// them through the socket's protect path. Imports only media/.
import { randomBytes } from 'node:crypto';
import type { PairQuality } from './quality.js';
import type { ReportBlock } from './stats.js';

/** RFC 3550 §6.2: the report interval we aim at; each one is randomised to 0.5..1.5 of it (§6.3.1). */
export const RTCP_INTERVAL_MS = 5000;
/** The first report goes out soon after there is something to report (§6.3.1 halves the first interval). */
export const RTCP_FIRST_MS = 1000;
/** A peer that sent RTCP this recently gets its own reports forwarded; we generate none. */
export const PEER_RTCP_RECENT_MS = 3 * RTCP_INTERVAL_MS;
/** How often the relay's timer looks at the generating sockets. */
export const RTCP_TICK_MS = 250;

/** Seconds from 1900 (NTP era 0) to 1970 (Unix). */
const NTP_UNIX_OFFSET = 2208988800;

export interface SenderReportInfo {
  /** Wall-clock time of the report, Unix ms (becomes the 64-bit NTP timestamp). */
  wallMs: number;
  rtpTimestamp: number;
  packets: number;
  octets: number;
}

/** A report block as we write it: what stats.ts parses from others' reports, less the reporter. */
export type ReportBlockInfo = Omit<ReportBlock, 'reporterSsrc'>;

/** NTP timestamp (seconds, fraction) of a Unix ms time. */
export function ntpTime(wallMs: number): { sec: number; frac: number } {
  const sec = Math.floor(wallMs / 1000);
  const frac = Math.floor(((wallMs - sec * 1000) / 1000) * 0x100000000);
  return { sec: (sec + NTP_UNIX_OFFSET) >>> 0, frac: Math.min(frac, 0xffffffff) >>> 0 };
}

/**
 * A compound RTCP packet: SR (when `sender` is given) or RR with up to 31 report blocks, then an
 * SDES with the CNAME (RFC 3550 §6.1: every compound packet carries one).
 */
export function buildReport(ssrc: number, sender: SenderReportInfo | null, blocks: readonly ReportBlockInfo[], cname: string): Buffer {
  const rc = Math.min(blocks.length, 31);
  const headLen = 8 + (sender !== null ? 20 : 0) + rc * 24;
  const cn = Buffer.from(cname, 'utf8').subarray(0, 255);
  // SDES chunk: SSRC, CNAME item (type, length, text), null terminator, padded to 32 bits.
  const sdesLen = 4 + Math.ceil((4 + 2 + cn.length + 1) / 4) * 4;
  const buf = Buffer.alloc(headLen + sdesLen);
  buf[0] = 0x80 | rc;
  buf[1] = sender !== null ? 200 : 201;
  buf.writeUInt16BE(headLen / 4 - 1, 2);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  let p = 8;
  if (sender !== null) {
    const t = ntpTime(sender.wallMs);
    buf.writeUInt32BE(t.sec, p); buf.writeUInt32BE(t.frac, p + 4);
    buf.writeUInt32BE(sender.rtpTimestamp >>> 0, p + 8);
    buf.writeUInt32BE(sender.packets >>> 0, p + 12);
    buf.writeUInt32BE(sender.octets >>> 0, p + 16);
    p += 20;
  }
  for (let i = 0; i < rc; i++, p += 24) {
    const b = blocks[i]!;
    buf.writeUInt32BE(b.ssrc >>> 0, p);
    buf[p + 4] = Math.max(0, Math.min(255, Math.floor(b.fractionLost * 256)));
    // Signed 24 bits, clamped (RFC 3550 §6.4.1).
    buf.writeIntBE(Math.max(-0x800000, Math.min(0x7fffff, Math.round(b.cumulativeLost))), p + 5, 3);
    buf.writeUInt32BE(b.extendedHighestSeq >>> 0, p + 8);
    buf.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(b.jitter))) >>> 0, p + 12);
    buf.writeUInt32BE(b.lsr >>> 0, p + 16);
    buf.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(b.dlsr))) >>> 0, p + 20);
  }
  buf[p] = 0x81; buf[p + 1] = 202; buf.writeUInt16BE(sdesLen / 4 - 1, p + 2);
  buf.writeUInt32BE(ssrc >>> 0, p + 4);
  buf[p + 8] = 1; buf[p + 9] = cn.length;
  cn.copy(buf, p + 10);
  return buf;
}

/**
 * The generation state of one socket facing a party: when the next report is due, and our own
 * SSRC for receiver reports while we forward no stream to the party.
 */
export class RtcpGenerator {
  readonly ownSsrc = randomBytes(4).readUInt32BE(0);
  readonly cname = `rtprelay-${randomBytes(6).toString('hex')}`;
  /** Monotonic ms of the next report; 0: not scheduled yet. */
  nextMs = 0;
  sent = 0;

  /** Whether a report is due at `nowMs`; schedules the one after it (0.5..1.5 × the interval). */
  due(nowMs: number): boolean {
    if (this.nextMs === 0) { this.nextMs = nowMs + RTCP_FIRST_MS * (0.5 + Math.random()); return false; }
    if (nowMs < this.nextMs) return false;
    this.nextMs = nowMs + RTCP_INTERVAL_MS * (0.5 + Math.random());
    return true;
  }

  /**
   * The report towards a party. `own`: the party's stream as it reaches us (report block about it);
   * `fwd`: the stream we forward to it (SR about it), when any. Null: nothing to report yet.
   * `nowMs` is on the monotonic clock PairQuality was fed with; `wallMs` is Unix time.
   */
  report(own: PairQuality, fwd: PairQuality | null, nowMs: number, wallMs: number): Buffer | null {
    const blocks: ReportBlockInfo[] = [];
    const r = own.rtp;
    if (r.received > 0) {
      blocks.push({
        ssrc: r.ssrc, fractionLost: r.fractionLostInterval(), cumulativeLost: r.lost,
        extendedHighestSeq: r.extendedMaxSeq, jitter: r.jitter,
        lsr: own.lastSrNtp, dlsr: own.lastSrNtp === 0 ? 0 : ((nowMs - own.lastSrAtMs) * 65536) / 1000,
      });
    }
    const f = fwd !== null && fwd.rtp.received > 0 ? fwd : null;
    if (f === null && blocks.length === 0) return null;
    let sender: SenderReportInfo | null = null;
    let ssrc = this.ownSsrc;
    if (f !== null) {
      ssrc = f.rtp.ssrc;
      // The RTP timestamp of "now" on the sender's clock: the last one we forwarded, moved on by
      // the time since, on the RTP clock of its codec (SocketPlan.clockRates; 8 kHz when not given).
      const ts = f.lastTs + Math.round(((nowMs - f.lastTsAtMs) * f.rtp.clockRate) / 1000);
      sender = { wallMs, rtpTimestamp: ts >>> 0, packets: f.rtp.packets, octets: f.payloadOctets };
    }
    this.sent++;
    return buildReport(ssrc, sender, blocks, this.cname);
  }
}
