import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RtpStats, RttTracker, estimateMos, mosFromR, oneWayDelayMs, parseRtcp, rFactor, streamMos,
} from '../../../media/stats.js';

function rtp(seq: number, ts: number, ssrc = 0x11223344, pt = 0, payload = 160): Buffer {
  const b = Buffer.alloc(12 + payload);
  b[0] = 0x80; b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

/** Feeds seqs in the given order, 20 ms / 160 samples apart by sequence number. */
function feed(s: RtpStats, seqs: number[], start = 0): void {
  for (const q of seqs) s.update(rtp(start + q, (start + q) * 160), (start + q) * 20);
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

test('a clean stream: nothing lost, no jitter', () => {
  const s = new RtpStats();
  feed(s, range(100));
  assert.equal(s.packets, 100);
  assert.equal(s.bytes, 100 * 172);
  assert.equal(s.received, 100);
  assert.equal(s.lost, 0);
  assert.equal(s.duplicates, 0);
  assert.equal(s.outOfOrder, 0);
  assert.equal(s.jitter, 0);
  assert.equal(s.ssrc, 0x11223344);
  assert.equal(s.payloadType, 0);
});

test('injected loss is counted exactly, including a burst and a loss at the end of a run', () => {
  const s = new RtpStats();
  const drop = new Set([5, 17, 40, 41, 42, 43, 44, 98]);
  feed(s, range(100).filter((q) => !drop.has(q)));
  assert.equal(s.lost, drop.size);
  assert.equal(s.received, 100 - drop.size);
  assert.equal(s.outOfOrder, 0);
});

test('reordered packets are counted as out of order, not lost', () => {
  const s = new RtpStats();
  feed(s, [0, 1, 2, 4, 3, 5, 8, 6, 7, 9, 10]);
  assert.equal(s.lost, 0);
  assert.equal(s.outOfOrder, 3);
  assert.equal(s.received, 11);
  assert.equal(s.extendedMaxSeq, 10);
});

test('duplicates are counted and do not hide loss', () => {
  const s = new RtpStats();
  feed(s, [0, 1, 1, 2, 4, 2, 5, 5, 6]); // 3 lost; duplicates of the newest and of older ones
  assert.equal(s.duplicates, 3);
  assert.equal(s.lost, 1);
  assert.equal(s.received, 6);
  assert.equal(s.outOfOrder, 0);
});

test('sequence wrap counts a cycle and no loss; loss across the wrap is exact', () => {
  const s = new RtpStats();
  const seqs = range(20, 65530).filter((q) => q !== 65535 && q !== 65537);
  feed(s, seqs);
  assert.equal(s.extendedMaxSeq, 65549);
  assert.equal(s.lost, 2);
  assert.equal(s.received, 18);
  assert.equal(s.outOfOrder, 0);
});

test('a late packet from before the wrap is out of order, not a new cycle', () => {
  const s = new RtpStats();
  feed(s, [65534, 0, 65535, 1], 0);
  assert.equal(s.outOfOrder, 1);
  assert.equal(s.lost, 0);
  assert.equal(s.extendedMaxSeq, 65536 + 1);
});

test('a big jump restarts the run after two sequential packets; one stray is ignored', () => {
  const s = new RtpStats();
  feed(s, range(10));
  s.update(rtp(30000, 1), 1000); // stray
  feed(s, [10, 11]);
  assert.equal(s.restarts, 0);
  assert.equal(s.lost, 0);
  s.update(rtp(40000, 2), 1100);
  s.update(rtp(40001, 162), 1120);
  s.update(rtp(40003, 482), 1160);
  assert.equal(s.restarts, 1);
  assert.equal(s.lost, 1, 'loss of the new run only; the jump itself is not loss');
});

test('a new SSRC restarts the sequence figures but keeps totals', () => {
  const s = new RtpStats();
  feed(s, [0, 1, 3]);
  s.update(rtp(5000, 0, 0xabcdef), 100);
  s.update(rtp(5002, 320, 0xabcdef), 140);
  assert.equal(s.ssrc, 0xabcdef);
  assert.equal(s.lost, 2);
  assert.equal(s.packets, 5);
});

test('jitter follows RFC 3550 A.8 with known arrival deviations', () => {
  const s = new RtpStats(8000);
  // Packets sent every 20 ms (160 samples); arrivals deviate by these ms from the schedule.
  const dev = [0, 5, -3, 10, 0, 0, 7, -2, 4, 0];
  let expect = 0;
  for (let i = 0; i < dev.length; i++) {
    s.update(rtp(i, i * 160), 1000 + i * 20 + dev[i]!);
    if (i > 0) expect += (Math.abs(dev[i]! - dev[i - 1]!) * 8 - expect) / 16;
  }
  assert.ok(Math.abs(s.jitter - expect) < 1e-9, `${s.jitter} vs ${expect}`);
  assert.ok(Math.abs(s.jitterMs - expect / 8) < 1e-9);
  assert.ok(s.jitterMs > 1, 'deviations of several ms show');
});

test('jitter ignores the RTP timestamp wrap', () => {
  const s = new RtpStats();
  for (let i = 0; i < 10; i++) s.update(rtp(i, 0xffffff00 + i * 160), i * 20);
  assert.equal(s.jitter, 0);
});

test('RFC 3550 A.3 fraction lost per interval', () => {
  const s = new RtpStats();
  feed(s, range(10).filter((q) => q !== 3 && q !== 4));
  assert.equal(s.fractionLostInterval(), 2 / 10);
  feed(s, range(10, 10));
  assert.equal(s.fractionLostInterval(), 0);
});

test('short and non-RTP packets are counted but touch no sequence state', () => {
  const s = new RtpStats();
  s.update(Buffer.alloc(8, 0x80), 0);
  s.update(Buffer.alloc(20, 0x00), 0);
  assert.equal(s.packets, 2);
  assert.equal(s.received, 0);
  assert.equal(s.lost, 0);
});

function senderReport(ssrc: number, ntpMiddle: number, blocks: Buffer[] = []): Buffer {
  const b = Buffer.alloc(28 + blocks.length * 24);
  b[0] = 0x80 | blocks.length; b[1] = 200;
  b.writeUInt16BE(b.length / 4 - 1, 2);
  b.writeUInt32BE(ssrc, 4);
  b.writeUInt32BE(ntpMiddle >>> 16, 8); // NTP seconds (low 16 bits = high half of the middle)
  b.writeUInt32BE(((ntpMiddle & 0xffff) << 16) >>> 0, 12);
  b.writeUInt32BE(12345, 16);
  b.writeUInt32BE(50, 20);
  b.writeUInt32BE(8000, 24);
  blocks.forEach((blk, i) => blk.copy(b, 28 + i * 24));
  return b;
}

function block(ssrc: number, fraction: number, cumLost: number, jitter: number, lsr: number, dlsr: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32BE(ssrc, 0);
  b[4] = fraction;
  b.writeIntBE(cumLost, 5, 3);
  b.writeUInt32BE(70000, 8);
  b.writeUInt32BE(jitter, 12);
  b.writeUInt32BE(lsr, 16);
  b.writeUInt32BE(dlsr, 20);
  return b;
}

function receiverReport(ssrc: number, blocks: Buffer[]): Buffer {
  const b = Buffer.alloc(8 + blocks.length * 24);
  b[0] = 0x80 | blocks.length; b[1] = 201;
  b.writeUInt16BE(b.length / 4 - 1, 2);
  b.writeUInt32BE(ssrc, 4);
  blocks.forEach((blk, i) => blk.copy(b, 8 + i * 24));
  return b;
}

test('RTCP SR and RR parse; RTT from the relay\'s own arrival times', () => {
  const sr = senderReport(0xaaaa, 0x12345678);
  const sdes = Buffer.from([0x81, 202, 0, 1, 0, 0, 0xaa, 0xaa]);
  const info = parseRtcp(Buffer.concat([sr, sdes]));
  assert.ok(info);
  assert.equal(info.senders.length, 1);
  assert.equal(info.senders[0]!.ntpMiddle, 0x12345678);
  assert.equal(info.senders[0]!.packetCount, 50);

  const rtt = new RttTracker();
  rtt.noteSenderReport(info.senders[0]!.ntpMiddle, 10_000);
  // The far end held the SR 0.5 s (DLSR 32768/65536 s); its RR reaches us at 10 580 ms: RTT 80.
  const rr = parseRtcp(receiverReport(0xbbbb, [block(0xaaaa, 64, -3, 240, 0x12345678, 32768)]));
  assert.ok(rr);
  const b = rr.reports[0]!;
  assert.deepEqual(
    [b.reporterSsrc, b.ssrc, b.fractionLost, b.cumulativeLost, b.jitter, b.dlsr],
    [0xbbbb, 0xaaaa, 0.25, -3, 240, 32768],
  );
  assert.equal(rtt.rttMs(b, 10_580), 80);
  assert.equal(rtt.rttMs({ ...b, lsr: 0 }, 10_580), null, 'no SR yet');
  assert.equal(rtt.rttMs({ ...b, lsr: 1 }, 10_580), null, 'an SR we never saw');

  const s = new RtpStats();
  s.applyReport(b, 80);
  assert.deepEqual([s.rtcpFractionLost, s.rtcpCumulativeLost, s.rtcpJitter, s.rttMs], [0.25, -3, 240, 80]);
});

test('malformed RTCP is refused', () => {
  assert.equal(parseRtcp(Buffer.from([0x80, 200, 0, 10, 0, 0, 0, 0])), null, 'length past the end');
  assert.equal(parseRtcp(Buffer.from([0x00, 201, 0, 1, 0, 0, 0, 0])), null, 'version 0');
  assert.equal(parseRtcp(Buffer.from([0x81, 201, 0, 1, 0, 0, 0, 0])), null, 'RC 1 without its block');
});

test('MOS: about 4.4 on a clean short path, falls with loss and with delay', () => {
  const clean = estimateMos(0, oneWayDelayMs(20, 1));
  assert.ok(clean > 4.3 && clean <= 4.5, String(clean));
  let prev = Infinity;
  for (let loss = 0; loss <= 100; loss += 0.5) {
    const m = estimateMos(loss, 50);
    assert.ok(m <= prev, `loss ${loss}`);
    if (loss <= 30) assert.ok(m < prev, `strictly at ${loss}%`);
    prev = m;
  }
  prev = Infinity;
  for (let d = 0; d <= 1000; d += 10) {
    const m = estimateMos(1, d);
    assert.ok(m <= prev, `delay ${d}`);
    prev = m;
  }
  assert.ok(estimateMos(5, 50) < 4 && estimateMos(5, 50) > 3, 'G.113: 5% random loss with PLC is fair-to-good');
  assert.ok(estimateMos(0, 400) < estimateMos(0, 150) - 0.5, 'delay past 177 ms hurts fast');
  assert.equal(mosFromR(-5), 1);
  assert.equal(mosFromR(120), 4.5);
  assert.ok(Math.abs(rFactor(0, 0) - 93.2) < 1e-9);
});

test('streamMos: null before RTP, lower with loss, lower with RTT', () => {
  const clean = new RtpStats();
  assert.equal(streamMos(clean), null);
  feed(clean, range(100));
  const lossy = new RtpStats();
  feed(lossy, range(100).filter((q) => q % 10 !== 5));
  const m0 = streamMos(clean)!, m1 = streamMos(lossy)!;
  assert.ok(m0 > 4.3 && m1 < m0 - 0.5, `${m0} ${m1}`);
  clean.rttMs = 600;
  assert.ok(streamMos(clean)! < m0 - 0.3);
});
