// RTCP generation: the SR/RR builder parsed back with media/stats.ts, and the generator's reports
// from PairQuality figures (counts, loss, highest sequence, LSR/DLSR).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, ntpTime, RtcpGenerator, RTCP_INTERVAL_MS } from '../../../media/rtcp-gen.js';
import { PairQuality } from '../../../media/quality.js';
import { parseRtcp } from '../../../media/stats.js';
import { rtp } from '../../support/media.js';

test('buildReport: an SR with two report blocks and an SDES CNAME parses back', () => {
  const wallMs = Date.UTC(2024, 0, 1, 12, 0, 0, 500);
  const pkt = buildReport(0x11223344, { wallMs, rtpTimestamp: 0xfffffff0, packets: 250, octets: 40000 }, [
    { ssrc: 0xaabbccdd, fractionLost: 0.25, cumulativeLost: 17, extendedHighestSeq: 0x1_0005, jitter: 42, lsr: 0x12345678, dlsr: 65536 },
    { ssrc: 0x01020304, fractionLost: 0, cumulativeLost: -3, extendedHighestSeq: 9, jitter: 0, lsr: 0, dlsr: 0 },
  ], 'relay@test');
  assert.equal(pkt.length % 4, 0);
  assert.equal(pkt[0]! & 0x1f, 2);
  assert.equal(pkt[1], 200);
  // The SR's length field covers it exactly; the SDES follows.
  const srLen = (pkt.readUInt16BE(2) + 1) * 4;
  assert.equal(srLen, 8 + 20 + 2 * 24);
  assert.equal(pkt[srLen + 1], 202);
  assert.equal(srLen + (pkt.readUInt16BE(srLen + 2) + 1) * 4, pkt.length);
  assert.equal(pkt.toString('utf8', srLen + 10, srLen + 10 + pkt[srLen + 9]!), 'relay@test');
  const info = parseRtcp(pkt);
  assert.ok(info);
  assert.equal(info.senders.length, 1);
  const s = info.senders[0]!;
  assert.equal(s.ssrc, 0x11223344);
  assert.equal(s.rtpTimestamp, 0xfffffff0);
  assert.equal(s.packetCount, 250);
  assert.equal(s.octetCount, 40000);
  const t = ntpTime(wallMs);
  assert.equal(t.sec, Math.floor(wallMs / 1000) + 2208988800);
  assert.equal(t.frac, 0x80000000);
  assert.equal(s.ntpMiddle, ((t.sec & 0xffff) * 65536 + (t.frac >>> 16)) >>> 0);
  assert.equal(info.reports.length, 2);
  const [b1, b2] = info.reports;
  assert.deepEqual(b1, { reporterSsrc: 0x11223344, ssrc: 0xaabbccdd, fractionLost: 0.25, cumulativeLost: 17,
    extendedHighestSeq: 0x1_0005, jitter: 42, lsr: 0x12345678, dlsr: 65536 });
  assert.equal(b2!.cumulativeLost, -3);
});

test('buildReport: an RR without sender info', () => {
  const pkt = buildReport(7, null, [{ ssrc: 9, fractionLost: 1, cumulativeLost: 1e9, extendedHighestSeq: 1, jitter: 1, lsr: 0, dlsr: 0 }], 'x');
  assert.equal(pkt[1], 201);
  const info = parseRtcp(pkt)!;
  assert.equal(info.senders.length, 0);
  assert.equal(info.reports[0]!.fractionLost, 255 / 256); // clamped to the 8-bit field
  assert.equal(info.reports[0]!.cumulativeLost, 0x7fffff); // clamped to 24 bits
});

test('RtcpGenerator: SR about the forwarded stream, RR block about the party with loss and LSR/DLSR', () => {
  const own = new PairQuality(new Float64Array(16).fill(0)); // what the party sends us
  const fwd = new PairQuality(new Float64Array(16).fill(0)); // what we forward to it
  let now = 1000;
  // The party: seq 100..119 with 101 and 105 lost.
  for (let seq = 100; seq < 120; seq++) {
    if (seq !== 101 && seq !== 105) own.rtpPacket(rtp({ seq, ts: seq * 160, ssrc: 0xb0b }), now);
    now += 20;
  }
  // Its SR passed us at 1200 ms (NTP middle 0xabcd1234).
  const sr = buildReport(0xb0b, { wallMs: Date.now(), rtpTimestamp: 0, packets: 1, octets: 160 }, [], 'b');
  sr.writeUInt32BE(0xabcd, 8); sr.writeUInt32BE(0x12340000, 12);
  own.rtcpPacket(sr, 1200, null);
  // The stream we forward: 10 packets of 160 bytes payload, last ts 8000 at `now`.
  for (let i = 1; i <= 10; i++) fwd.rtpPacket(rtp({ seq: i, ts: 800 * i, ssrc: 0xa11ce, payload: Buffer.alloc(160, 0xff) }), now);
  const gen = new RtcpGenerator();
  assert.equal(gen.due(now), false); // the first call schedules
  assert.ok(gen.nextMs > now && gen.nextMs <= now + 1500);
  assert.equal(gen.due(gen.nextMs), true);
  assert.ok(gen.nextMs >= now + RTCP_INTERVAL_MS / 2);
  const at = now + 500;
  const pkt = gen.report(own, fwd, at, Date.now());
  assert.ok(pkt);
  const info = parseRtcp(pkt)!;
  const s = info.senders[0]!;
  assert.equal(s.ssrc, 0xa11ce);
  assert.equal(s.packetCount, 10);
  assert.equal(s.octetCount, 1600);
  assert.equal(s.rtpTimestamp, 8000 + 4000); // 500 ms on at 8 kHz
  const b = info.reports[0]!;
  assert.equal(b.ssrc, 0xb0b);
  assert.equal(b.cumulativeLost, 2);
  assert.equal(b.fractionLost, Math.floor((2 / 20) * 256) / 256);
  assert.equal(b.extendedHighestSeq, 119);
  assert.equal(b.lsr, 0xabcd1234);
  assert.equal(b.dlsr, Math.round(((at - 1200) * 65536) / 1000));
  // The next report's fraction covers only the new interval: nothing lost since.
  own.rtpPacket(rtp({ seq: 120, ts: 120 * 160, ssrc: 0xb0b }), at + 20);
  assert.equal(parseRtcp(gen.report(own, fwd, at + 5000, Date.now())!)!.reports[0]!.fractionLost, 0);
});

test('RtcpGenerator: RR from our own SSRC while nothing is forwarded; nothing at all before any media', () => {
  const own = new PairQuality(new Float64Array(16));
  const gen = new RtcpGenerator();
  assert.equal(gen.report(own, null, 0, Date.now()), null);
  own.rtpPacket(rtp({ seq: 1, ssrc: 5 }), 0);
  const info = parseRtcp(gen.report(own, new PairQuality(new Float64Array(16)), 10, Date.now())!)!;
  assert.equal(info.senders.length, 0);
  assert.equal(info.reports[0]!.reporterSsrc, gen.ownSsrc);
  assert.equal(info.reports[0]!.ssrc, 5);
});

test('RtcpGenerator: an Opus stream (48 kHz) moves the SR timestamp on at 48 per ms', () => {
  const own = new PairQuality(new Float64Array(16).fill(0));
  const fwd = new PairQuality(new Float64Array(16).fill(0));
  fwd.setClockRates([111, 48000, 126, 8000]);
  const now = 5000;
  for (let i = 1; i <= 10; i++) fwd.rtpPacket(rtp({ seq: i, ts: 960 * i, pt: 111, ssrc: 0x0905 }), now);
  const pkt = new RtcpGenerator().report(own, fwd, now + 500, Date.now())!;
  assert.equal(parseRtcp(pkt)!.senders[0]!.rtpTimestamp, 9600 + 500 * 48);
  // Without the plan's rates the 8 kHz default applies (G.711).
  const g711 = new PairQuality(new Float64Array(16).fill(0));
  for (let i = 1; i <= 10; i++) g711.rtpPacket(rtp({ seq: i, ts: 160 * i, ssrc: 0x0711 }), now);
  assert.equal(parseRtcp(new RtcpGenerator().report(own, g711, now + 500, Date.now())!)!.senders[0]!.rtpTimestamp, 1600 + 500 * 8);
});
