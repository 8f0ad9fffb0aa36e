import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pcmToAlaw, pcmToUlaw } from '../../../../media/recording/g711.js';
import { CallRecorder, fileStem, type RecordedStream } from '../../../../media/recording/recorder.js';
import { FileSink } from '../../../../media/recording/file-sink.js';
import { PcapWriter, addressBytes, pcapFlow } from '../../../../media/recording/pcap.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const TSHARK = '/usr/bin/tshark';
const hasTshark = existsSync(TSHARK) || spawnSync('tshark', ['-v']).status === 0;

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtprelay-rec-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function tshark(args: string[]): string {
  const r = spawnSync('tshark', args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** One 20 ms G.711 packet of a `hz` sine (amplitude 8000) at sample offset seq*160. */
function tonePacket(seq: number, ssrc: number, pt: number, hz: number, enc: (s: number) => number, tsBase = 0): Buffer {
  const b = Buffer.alloc(12 + 160);
  b[0] = 0x80; b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((tsBase + seq * 160) >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  for (let i = 0; i < 160; i++) b[12 + i] = enc(Math.round(8000 * Math.sin((2 * Math.PI * hz * (seq * 160 + i)) / 8000)));
  return b;
}

/** RFC 4733 telephone-event packet in the place of audio packet `seq`. */
function eventPacket(seq: number, ssrc: number, pt: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x80; b[1] = pt;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(seq * 160, 4);
  b.writeUInt32BE(ssrc, 8);
  b[12] = 5; b[13] = 10; b.writeUInt16BE(160, 14);
  return b;
}

interface Wav { rate: number; channels: number; bits: number; samples: Int16Array }

function readWav(path: string): Wav {
  const b = readFileSync(path);
  assert.equal(b.toString('latin1', 0, 4), 'RIFF');
  assert.equal(b.toString('latin1', 8, 16), 'WAVEfmt ');
  assert.equal(b.readUInt32LE(4), b.length - 8, 'RIFF size patched');
  assert.equal(b.toString('latin1', 36, 40), 'data');
  const dataBytes = b.readUInt32LE(40);
  assert.equal(dataBytes, b.length - 44, 'data size patched');
  const samples = new Int16Array(dataBytes / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = b.readInt16LE(44 + 2 * i);
  return { rate: b.readUInt32LE(24), channels: b.readUInt16LE(22), bits: b.readUInt16LE(34), samples };
}

/** Goertzel power of `hz` over samples [from, to). */
function power(s: Int16Array, hz: number, from = 0, to = s.length): number {
  const k = 2 * Math.cos((2 * Math.PI * hz) / 8000);
  let p1 = 0, p2 = 0;
  for (let i = from; i < to; i++) { const p0 = s[i]! + k * p1 - p2; p2 = p1; p1 = p0; }
  return (p1 * p1 + p2 * p2 - k * p1 * p2) / (to - from);
}

function dominant(s: Int16Array, from: number, to: number): number {
  let best = 0, bestHz = 0;
  for (let hz = 100; hz <= 3500; hz += 20) {
    const p = power(s, hz, from, to);
    if (p > best) { best = p; bestHz = hz; }
  }
  return bestHz;
}

const allZero = (s: Int16Array, from: number, to: number): boolean => s.subarray(from, to).every((v) => v === 0);

const A: RecordedStream = {
  tag: 'caller-tag', kind: 'rtp', src: { address: '127.0.0.1', port: 40000 }, dst: { address: '127.0.0.2', port: 30000 },
  codecs: { 0: 'PCMU/8000', 101: 'telephone-event/8000' },
};
const B: RecordedStream = {
  tag: 'callee-tag', kind: 'rtp', src: { address: '127.0.0.3', port: 50000 }, dst: { address: '127.0.0.2', port: 30002 },
  codecs: { 8: 'PCMA/8000' },
};

test('two G.711 parties with loss: pcap streams, per-party and mixed WAV, metadata', async (t) => {
  const dir = tmp(t);
  let now = T0;
  const errors: Error[] = [];
  const rec = new CallRecorder({
    dir, stem: fileStem('call/../1@host', T0), callId: 'call/../1@host', metadata: 'case=42',
    onError: (e) => errors.push(e), now: () => now,
  });
  rec.start();
  rec.setStream(1, A);
  rec.setStream(2, B);
  const dropA = new Set([10, 11, 12, 13, 14, 50]);
  const dropB = new Set([30, 31]);
  let sentA = 0, sentB = 0;
  for (let i = 0; i < 100; i++) {
    // A: 440 Hz PCMU from T0; packets 60..62 are a DTMF event instead of audio.
    if (!dropA.has(i)) {
      rec.rtp(1, i >= 60 && i <= 62 ? eventPacket(i, 0xaaaa, 101) : tonePacket(i, 0xaaaa, 0, 440, pcmToUlaw), T0 + i * 20);
      sentA++;
    }
    // B: 880 Hz PCMA, starting 100 ms later, with a random RTP timestamp base.
    if (!dropB.has(i)) { rec.rtp(2, tonePacket(i + 1000, 0xbbbb, 8, 880, pcmToAlaw, 123456789 - 160000), T0 + 100 + i * 20); sentB++; }
  }
  now = T0 + 2200;
  const files = await rec.stop();
  assert.deepEqual(errors, []);
  assert.deepEqual(files.map((f) => f.kind), ['pcap', 'wav', 'wav', 'mix', 'metadata']);
  for (const f of files) assert.ok(f.bytes > 0 && readFileSync(f.path).length === f.bytes, f.path);
  assert.ok(!files.some((f) => f.path.includes('/../') || f.path.slice(dir.length + 1).includes('/')), 'peer input stays in the directory');

  // Audio: every file spans T0 .. B's last sample (2.1 s), the parties' tones where they spoke.
  const [wavA, wavB, mix] = [files[1]!, files[2]!, files[3]!].map((f) => readWav(f.path)) as [Wav, Wav, Wav];
  for (const w of [wavA, wavB, mix]) {
    assert.deepEqual([w.rate, w.channels, w.bits], [8000, 1, 16]);
    assert.equal(w.samples.length, 2.1 * 8000);
  }
  assert.equal(dominant(wavA.samples, 0, 1600), 440);
  assert.equal(dominant(wavA.samples, 2400, 4800), 440);
  assert.ok(allZero(wavA.samples, 1600, 2400), 'A: 5 lost packets are 100 ms of silence');
  assert.ok(allZero(wavA.samples, 50 * 160, 51 * 160), 'A: lost packet 50');
  assert.ok(allZero(wavA.samples, 60 * 160, 63 * 160), 'A: telephone-event packets are skipped');
  assert.ok(!allZero(wavA.samples, 63 * 160, 64 * 160));
  assert.ok(allZero(wavA.samples, 16000, 16800), 'A ended at 2.0 s');
  assert.ok(allZero(wavB.samples, 0, 800), 'B starts 100 ms in');
  assert.equal(dominant(wavB.samples, 800, 800 + 4800), 880);
  assert.ok(allZero(wavB.samples, 800 + 30 * 160, 800 + 32 * 160), 'B: 2 lost packets');
  assert.ok(!allZero(wavB.samples, 16640, 16800), 'B: last packet at the end');
  const pa = power(mix.samples, 440, 800, 16000), pb = power(mix.samples, 880, 800, 16000);
  assert.ok(pa > 1e6 && pb > 1e6 && pa / pb < 3 && pb / pa < 3, `both tones in the mix: ${pa} ${pb}`);
  assert.ok(power(mix.samples, 660, 800, 16000) < pa / 100, 'and nothing much between them');
  assert.equal(dominant(mix.samples, 0, 800), 440, 'only A before B starts');

  const meta = JSON.parse(readFileSync(files[4]!.path, 'utf8'));
  assert.equal(meta.callId, 'call/../1@host');
  assert.equal(meta.metadata, 'case=42');
  assert.deepEqual(meta.tags, ['caller-tag', 'callee-tag']);
  assert.equal(meta.start, new Date(T0).toISOString());
  assert.equal(meta.end, new Date(T0 + 2200).toISOString());
  assert.deepEqual(meta.streams.map((s: { src: unknown; codecs: unknown; packets: number }) => [s.src, s.codecs, s.packets]),
    [[A.src, A.codecs, sentA], [B.src, B.codecs, sentB]]);
  assert.deepEqual(meta.parties.map((p: { tag: string; file: string }) => [p.tag, p.file]), [['caller-tag', files[1]!.path], ['callee-tag', files[2]!.path]]);

  if (!hasTshark) { t.diagnostic('tshark not installed: pcap not checked by tshark'); return; }
  const out = tshark(['-r', files[0]!.path, '--enable-heuristic', 'rtp_udp', '-o', 'udp.try_heuristic_first:TRUE', '-q', '-z', 'rtp,streams']);
  const rows = out.split('\n').filter((l) => /0x0000(AAAA|BBBB)/i.test(l));
  assert.equal(rows.length, 2, out);
  const rowA = rows.find((l) => /0x0000AAAA/i.test(l))!, rowB = rows.find((l) => /0x0000BBBB/i.test(l))!;
  assert.match(rowA, /127\.0\.0\.1\s+40000\s+127\.0\.0\.2\s+30000/);
  assert.match(rowA, /g711U/);
  assert.match(rowA, new RegExp(`\\s${sentA}\\s+${dropA.size} \\(`), `A: ${sentA} packets, ${dropA.size} lost`);
  assert.match(rowB, /127\.0\.0\.3\s+50000\s+127\.0\.0\.2\s+30002/);
  assert.match(rowB, /g711A/);
  assert.match(rowB, new RegExp(`\\s${sentB}\\s+${dropB.size} \\(`), `B: ${sentB} packets, ${dropB.size} lost`);
  // Timestamps are the arrival times we gave: first packet at T0, B's last at T0 + 2.08 s.
  const times = tshark(['-r', files[0]!.path, '-T', 'fields', '-e', 'frame.time_epoch']).trim().split('\n').map(Number);
  assert.equal(times.length, sentA + sentB);
  assert.equal(Math.min(...times), T0 / 1000);
  assert.ok(Math.abs(Math.max(...times) - (T0 + 100 + 99 * 20) / 1000) < 1e-6);
  // Every frame decodes as RTP; none is malformed, an expert error, or has a bad checksum.
  const decoded = ['--enable-heuristic', 'rtp_udp', '-o', 'udp.try_heuristic_first:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE'];
  assert.equal(tshark(['-r', files[0]!.path, ...decoded, '-Y', 'rtp']).trim().split('\n').length, sentA + sentB);
  const bad = '_ws.malformed || _ws.expert.severity == error || udp.checksum.status == "Bad" || ip.checksum.status == "Bad"';
  assert.equal(tshark(['-r', files[0]!.path, ...decoded, '-Y', bad]).trim(), '');
});

test('pause and resume: exactly the recorded intervals, audio back to back', async (t) => {
  const dir = tmp(t);
  let now = T0;
  const rec = new CallRecorder({ dir, stem: 'p', callId: 'p', onError: assert.fail, now: () => now });
  rec.setStream(1, A);
  rec.rtp(1, tonePacket(0, 1, 0, 440, pcmToUlaw), T0 - 20); // before start: not recorded
  rec.start();
  for (let i = 0; i < 150; i++) {
    now = T0 + i * 20;
    if (i === 50) rec.pause();
    if (i === 100) rec.resume();
    rec.rtp(1, tonePacket(i, 1, 0, 440, pcmToUlaw), now);
  }
  now = T0 + 3000;
  const files = await rec.stop();
  const wav = readWav(files.find((f) => f.kind === 'wav')!.path);
  assert.equal(wav.samples.length, 100 * 160, '1 s before the pause, 1 s after the resume');
  assert.ok(!allZero(wav.samples, 49 * 160, 51 * 160), 'no gap where the pause was');
  assert.equal(dominant(wav.samples, 0, wav.samples.length), 440);
  const meta = JSON.parse(readFileSync(files.find((f) => f.kind === 'metadata')!.path, 'utf8'));
  assert.deepEqual(meta.intervals, [
    { start: new Date(T0).toISOString(), end: new Date(T0 + 1000).toISOString() },
    { start: new Date(T0 + 2000).toISOString(), end: new Date(T0 + 3000).toISOString() },
  ]);
  assert.equal(meta.streams[0].packets, 100);
  if (!hasTshark) { t.diagnostic('tshark not installed: pcap not checked by tshark'); return; }
  const seqs = tshark(['-r', files[0]!.path, '--enable-heuristic', 'rtp_udp', '-o', 'udp.try_heuristic_first:TRUE', '-T', 'fields', '-e', 'rtp.seq']).trim().split('\n').map(Number);
  assert.deepEqual(seqs, [...Array(50).keys(), ...Array.from({ length: 50 }, (_, i) => 100 + i)]);
});

test('an unwritable directory: one error, no exception, the packet path carries on', async (t) => {
  const dir = tmp(t);
  const notDir = join(dir, 'file');
  writeFileSync(notDir, '');
  for (const target of [notDir, join(dir, 'missing', 'deeper')]) {
    const errors: Error[] = [];
    const rec = new CallRecorder({ dir: target, stem: 'x', callId: 'x', onError: (e) => errors.push(e) });
    rec.start();
    rec.setStream(1, A);
    rec.setStream(2, B);
    for (let i = 0; i < 50; i++) { rec.rtp(1, tonePacket(i, 1, 0, 440, pcmToUlaw), T0 + i * 20); rec.rtcp(2, Buffer.alloc(8, 0x80), T0 + i * 20); }
    const files = await rec.stop();
    assert.equal(errors.length, 1, target);
    assert.match((errors[0] as NodeJS.ErrnoException).code ?? '', /ENOTDIR|ENOENT/);
    assert.equal(rec.state, 'failed');
    assert.deepEqual(files, []);
    rec.rtp(1, tonePacket(99, 1, 0, 440, pcmToUlaw), T0); // after failure: ignored, no throw
  }
});

test('a full disk (ENOSPC) stops the file with one error and counts what was dropped', async () => {
  if (!existsSync('/dev/full')) return;
  const errors: Error[] = [];
  const sink = new FileSink('/dev/full', (e) => errors.push(e));
  for (let i = 0; i < 20; i++) sink.write(Buffer.alloc(1000));
  await new Promise((r) => setTimeout(r, 50));
  sink.write(Buffer.alloc(1000));
  assert.equal(await sink.close(), 0);
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.equal(sink.droppedBytes, 21_000);
});

test('a slow disk: the queue is capped, packets past it are dropped and counted', async (t) => {
  const dir = tmp(t);
  const rec = new CallRecorder({ dir, stem: 'q', callId: 'q', audio: false, onError: assert.fail });
  rec.start();
  rec.setStream(1, A);
  const big = Buffer.alloc(1400, 0x80);
  for (let i = 0; i < 8000; i++) rec.rtp(1, big, T0 + i); // 11 MB in one tick, more than the 8 MB cap
  assert.ok(rec.droppedPackets > 1000 && rec.droppedPackets < 3000, String(rec.droppedPackets));
  const files = await rec.stop();
  assert.equal(files[0]!.bytes, 24 + (8000 - rec.droppedPackets) * (16 + 20 + 8 + 1400));
});

test('pcap: IPv6 and IPv4 headers with valid checksums, real addresses', async (t) => {
  assert.deepEqual([...addressBytes('::ffff:1.2.3.4')], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
  assert.deepEqual([...addressBytes('2001:db8::1')], [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual([...addressBytes('fe80::1%eth0')], [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual([...addressBytes('1.2.3.4', true)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
  const path = join(tmp(t), 'x.pcap');
  const w = new PcapWriter(path, assert.fail);
  w.packet(pcapFlow({ address: '2001:db8::1', port: 4000 }, { address: '::1', port: 30000 }), tonePacket(1, 7, 0, 440, pcmToUlaw), T0);
  w.packet(pcapFlow({ address: '10.0.0.1', port: 4001 }, { address: '10.0.0.2', port: 30002 }), Buffer.from([1, 2, 3]), T0 + 0.5);
  assert.equal(await w.close(), 24 + 16 + 40 + 8 + 172 + 16 + 20 + 8 + 3);
  if (!hasTshark) { t.diagnostic('tshark not installed: pcap not checked by tshark'); return; }
  const out = tshark(['-r', path, '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields',
    '-e', 'frame.time_epoch', '-e', 'ipv6.src', '-e', 'ip.src', '-e', 'udp.dstport', '-e', 'udp.checksum.status', '-e', 'ip.checksum.status']);
  const lines = out.trim().split('\n').map((l) => l.split('\t'));
  assert.deepEqual(lines[0]!.slice(1, 5), ['2001:db8::1', '', '30000', '1']);
  assert.deepEqual(lines[1]!.slice(1, 6), ['', '10.0.0.1', '30002', '1', '1']);
  assert.ok(Math.abs(Number(lines[1]![0]) - Number(lines[0]![0]) - 0.0005) < 1e-6, 'microsecond timestamps');
});
