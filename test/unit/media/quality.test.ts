import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CounterSlots, Q_LOST, Q_RTT_MS } from '../../../media/counters.js';
import { PairQuality, readQuality } from '../../../media/quality.js';

function rtp(seq: number, ts: number, ssrc = 0x1234): Buffer {
  const b = Buffer.alloc(172);
  b[0] = 0x80; b[1] = 0;
  b.writeUInt16BE(seq & 0xffff, 2); b.writeUInt32BE(ts >>> 0, 4); b.writeUInt32BE(ssrc, 8);
  return b;
}

/** RTCP SR from `ssrc` with NTP middle bits `ntpMiddle`. */
function sr(ssrc: number, ntpMiddle: number): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80; b[1] = 200; b.writeUInt16BE(6, 2); b.writeUInt32BE(ssrc, 4);
  b.writeUInt32BE(ntpMiddle >>> 16, 8); b.writeUInt32BE((ntpMiddle << 16) >>> 0, 12);
  return b;
}

/** RTCP RR from `reporter` about `ssrc`: fraction lost (of 256), cumulative lost, LSR, DLSR (1/65536 s). */
function rr(reporter: number, ssrc: number, fraction: number, cumulative: number, lsr: number, dlsr: number): Buffer {
  const b = Buffer.alloc(32);
  b[0] = 0x81; b[1] = 201; b.writeUInt16BE(7, 2); b.writeUInt32BE(reporter, 4);
  b.writeUInt32BE(ssrc, 8); b[12] = fraction; b.writeIntBE(cumulative, 13, 3);
  b.writeUInt32BE(100, 16); b.writeUInt32BE(0, 20); b.writeUInt32BE(lsr, 24); b.writeUInt32BE(dlsr, 28);
  return b;
}

const slots = new CounterSlots(false);

test('a clean 20 ms stream: no loss, no jitter, MOS at the G.711 ceiling', () => {
  const slot = slots.alloc();
  const q = new PairQuality(slot.view);
  for (let i = 0; i < 100; i++) q.rtpPacket(rtp(i, i * 160), 1000 + i * 20);
  const r = readQuality(slot.view)!;
  assert.equal(r.received, 100);
  assert.equal(r.lost, 0);
  assert.equal(r.jitterMs, 0);
  assert.equal(r.rttMs, null);
  assert.equal(r.rtcpFractionLost, null);
  assert.ok(r.mos! > 4.3 && r.mos! <= 4.5, `mos ${r.mos}`);
});

test('injected loss, reordering and duplicates give the expected counts', () => {
  const slot = slots.alloc();
  const q = new PairQuality(slot.view);
  // 100 packets: 5 lost (10, 20, 30, 40, 50), 61/60 swapped, 70 sent twice.
  const order: number[] = [];
  for (let i = 0; i < 100; i++) if (![10, 20, 30, 40, 50].includes(i)) order.push(i);
  const k = order.indexOf(60); [order[k], order[k + 1]] = [order[k + 1]!, order[k]!];
  order.splice(order.indexOf(70) + 1, 0, 70);
  order.forEach((seq, n) => q.rtpPacket(rtp(seq, seq * 160), n * 20));
  const r = readQuality(slot.view)!;
  assert.equal(r.lost, 5);
  assert.equal(r.received, 95);
  assert.equal(r.outOfOrder, 1);
  assert.equal(r.duplicates, 1);
  assert.ok(r.mos! < 4.0, `5 % loss lowers the MOS: ${r.mos}`);
});

test('jitter follows RFC 3550 A.8: alternating on-time and 10 ms late arrivals converge to 10 ms', () => {
  const slot = slots.alloc();
  const q = new PairQuality(slot.view);
  // Transit alternates +0/+10 ms: |D| = 10 ms for every packet, so J converges to 10 ms.
  for (let i = 0; i < 400; i++) q.rtpPacket(rtp(i, i * 160), i * 20 + (i % 2 ? 10 : 0));
  const r = readQuality(slot.view)!;
  assert.ok(Math.abs(r.jitterMs - 10) < 0.01, `jitter ${r.jitterMs}`);
  assert.equal(r.lost, 0);
});

test('RTCP: the peer\'s receiver report gives loss and the relay-side round trip', () => {
  const aSlot = slots.alloc(), bSlot = slots.alloc();
  const a = new PairQuality(aSlot.view), b = new PairQuality(bSlot.view);
  for (let i = 0; i < 10; i++) a.rtpPacket(rtp(i, i * 160, 0xa), i * 20);
  for (let i = 0; i < 10; i++) b.rtpPacket(rtp(i, i * 160, 0xb), i * 20);
  // A's SR passes the relay at t=1000; B reports on A 150 ms later having held it 100 ms (DLSR).
  a.rtcpPacket(sr(0xa, 0x12345678), 1000, b);
  b.rtcpPacket(rr(0xb, 0xa, 64, 3, 0x12345678, 6554), 1150, a);
  const r = readQuality(aSlot.view)!;
  assert.equal(r.rtcpFractionLost, 0.25);
  assert.equal(r.rtcpCumulativeLost, 3);
  assert.ok(Math.abs(r.rttMs! - 50) < 0.1, `rtt ${r.rttMs}`);
  assert.ok(aSlot.view[Q_RTT_MS]! > 0 && bSlot.view[Q_RTT_MS] === -1, 'only A\'s stream has a round trip');
  // A report about an SSRC the peer does not send is ignored.
  b.rtcpPacket(rr(0xb, 0xdead, 255, 99, 0, 0), 1200, a);
  assert.equal(readQuality(aSlot.view)!.rtcpCumulativeLost, 3);
  assert.equal(aSlot.view[Q_LOST], 0);
});

function rtpPt(seq: number, ts: number, pt: number): Buffer {
  const b = rtp(seq, ts);
  b[1] = pt;
  return b;
}

test('jitter of a 48 kHz (Opus) stream: timestamp units follow the codec, milliseconds stay right', () => {
  const slot = slots.alloc();
  const q = new PairQuality(slot.view);
  q.setClockRates([111, 48000, 126, 8000]);
  // 20 ms packets (960 ticks) arriving alternately 5 ms late and on time: |D| = 5 ms = 240 ticks.
  for (let i = 0; i < 400; i++) q.rtpPacket(rtpPt(i, i * 960, 111), 1000 + i * 20 + (i % 2 ? 5 : 0));
  assert.equal(q.rtp.clockRate, 48000);
  assert.ok(Math.abs(q.rtp.jitter - 240) < 1, `jitter ${q.rtp.jitter} ticks`);
  assert.ok(Math.abs(readQuality(slot.view)!.jitterMs - 5) < 0.02, `jitter ${readQuality(slot.view)!.jitterMs} ms`);
  // Assumed 8 kHz (the old behaviour), the 960-tick steps read as ~100 ms of jitter.
  const wrong = new PairQuality(slots.alloc().view);
  for (let i = 0; i < 400; i++) wrong.rtpPacket(rtpPt(i, i * 960, 111), 1000 + i * 20 + (i % 2 ? 5 : 0));
  assert.ok(wrong.rtp.jitterMs > 90, `${wrong.rtp.jitterMs}`);
});

test('a switch to telephone-event (8 kHz) keeps the jitter in ms and skips the difference across clocks', () => {
  const slot = slots.alloc();
  const q = new PairQuality(slot.view);
  q.setClockRates([111, 48000, 126, 8000]);
  for (let i = 0; i < 50; i++) q.rtpPacket(rtpPt(i, i * 960, 111), 1000 + i * 20);
  // DTMF events on the 8 kHz clock, then back to Opus: on time, no jitter appears from the switch.
  for (let i = 50; i < 60; i++) q.rtpPacket(rtpPt(i, 12345 + (i - 50) * 160, 126), 1000 + i * 20);
  assert.equal(q.rtp.clockRate, 8000);
  for (let i = 60; i < 80; i++) q.rtpPacket(rtpPt(i, i * 960, 111), 1000 + i * 20);
  assert.equal(q.rtp.clockRate, 48000);
  assert.equal(readQuality(slot.view)!.jitterMs, 0);
});

test('clock rates belong to their pair: another pair, or the same one re-planned without them, counts 8 kHz', () => {
  const opus = new PairQuality(slots.alloc().view), g711 = new PairQuality(slots.alloc().view);
  opus.setClockRates([111, 48000]);
  g711.setClockRates([0, 8000, 111, 8000]);
  opus.rtpPacket(rtpPt(1, 960, 111), 1000);
  g711.rtpPacket(rtpPt(1, 960, 111), 1000);
  assert.equal(opus.rtp.clockRate, 48000);
  assert.equal(g711.rtp.clockRate, 8000, 'the Opus pair\'s rates are its own');
  opus.setClockRates(null);
  opus.rtpPacket(rtpPt(2, 1920, 111), 1020);
  assert.equal(opus.rtp.clockRate, 8000, 'a plan without rates clears them');
  opus.setClockRates([111, 48000, 111, 8000]);
  opus.rtpPacket(rtpPt(3, 2080, 111), 1040);
  assert.equal(opus.rtp.clockRate, 8000, 'of a payload type listed twice, the later rate counts');
  const fresh = new PairQuality(slots.alloc().view);
  fresh.rtpPacket(rtpPt(1, 960, 111), 1000);
  assert.equal(fresh.rtp.clockRate, 8000, 'a new pair starts at 8 kHz for every payload type');
});
