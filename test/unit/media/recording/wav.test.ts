import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ULAW_TO_PCM, pcmToUlaw } from '../../../../media/recording/g711.js';
import { AudioMixer, StreamAudio, WavWriter, codecTable } from '../../../../media/recording/wav.js';

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtprelay-wav-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Packet `seq` of a ramp: sample k of the stream is the μ-law code of (k % 4000) * 4, so places are checkable. */
function ramp(seq: number, ts: number, ssrc = 1): Buffer {
  const b = Buffer.alloc(12 + 160);
  b[0] = 0x80; b[1] = 0;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  for (let i = 0; i < 160; i++) b[12 + i] = pcmToUlaw(((seq * 160 + i) % 4000) * 4);
  return b;
}

function samples(path: string): Int16Array {
  const b = readFileSync(path);
  const out = new Int16Array((b.length - 44) / 2);
  for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(44 + 2 * i);
  return out;
}

const expectedAt = (k: number): number => ULAW_TO_PCM[pcmToUlaw((k % 4000) * 4)]!;

test('codec table: PCMU/PCMA by rtpmap, static types only as named, others skipped', () => {
  const t = codecTable({ 0: 'PCMU/8000', 8: 'pcma/8000', 96: 'PCMA/8000/1', 97: 'PCMU/16000', 101: 'telephone-event/8000', 13: 'CN/8000' });
  assert.equal(t[0], ULAW_TO_PCM);
  assert.ok(t[8] && t[96] && t[8] === t[96]);
  assert.equal(t[97], null, 'not an 8 kHz clock');
  assert.equal(t[101], null);
  assert.equal(t[13], null);
  assert.equal(t[18], null);
});

test('reordered packets land in their place; a timestamp jump re-anchors on arrival; a late party lines up', async (t) => {
  const dir = tmp(t);
  const a = new WavWriter(join(dir, 'a.wav'), assert.fail);
  const mixer = new AudioMixer(new WavWriter(join(dir, 'm.wav'), assert.fail));
  const sa = new StreamAudio(mixer.addParty(a), codecTable({ 0: 'PCMU/8000' }));
  const order = [0, 1, 3, 2, 4, 7, 5, 6, 8, 9];
  for (const q of order) sa.put(mixer, ramp(q, 5000 + q * 160), q * 160 + (q === 2 || q === 5 || q === 6 ? 320 : 0));
  mixer.settle();
  // A new SSRC whose timestamps mean nothing to the old ones: placed by arrival, 1 s later.
  sa.put(mixer, ramp(10, 999_999, 2), 8000 + 10 * 160);
  // Same SSRC, timestamp 5e6 further on (a sender's clock jump): placed by arrival too.
  sa.put(mixer, ramp(11, 5_999_999, 2), 8000 + 11 * 160);
  // Party B joins after 1.5 s of audio is out: its file still starts at 0.
  mixer.flush(12_000);
  const b = new WavWriter(join(dir, 'b.wav'), assert.fail);
  const sb = new StreamAudio(mixer.addParty(b), codecTable({ 0: 'PCMU/8000' }));
  sb.put(mixer, ramp(0, 0), 12_000);
  assert.deepEqual(await mixer.close(), [44 + 2 * 12_160, 44 + 2 * 12_160, 44 + 2 * 12_160]);
  const sa1 = samples(join(dir, 'a.wav'));
  for (let k = 0; k < 1600; k++) assert.equal(sa1[k], expectedAt(k), `sample ${k} in place`);
  assert.ok(sa1.subarray(1600, 9600).every((v) => v === 0), 'silence until the new source');
  for (let k = 0; k < 320; k++) assert.equal(sa1[9600 + k], expectedAt(1600 + k));
  const sb1 = samples(join(dir, 'b.wav'));
  assert.ok(sb1.subarray(0, 12_000).every((v) => v === 0));
  for (let k = 0; k < 160; k++) assert.equal(sb1[12_000 + k], expectedAt(k));
  const mix = samples(join(dir, 'm.wav'));
  for (let k = 0; k < 12_160; k++) assert.equal(mix[k], Math.max(-32768, Math.min(32767, sa1[k]! + sb1[k]!)));
});

test('the mix clips instead of wrapping', async (t) => {
  const dir = tmp(t);
  const mixer = new AudioMixer(new WavWriter(join(dir, 'm.wav'), assert.fail));
  const loud = Buffer.alloc(172); loud[0] = 0x80; loud.fill(0x80, 12); // μ-law 0x80 = +32124
  const p1 = new StreamAudio(mixer.addParty(new WavWriter(join(dir, '1.wav'), assert.fail)), codecTable({ 0: 'PCMU' }));
  const p2 = new StreamAudio(mixer.addParty(new WavWriter(join(dir, '2.wav'), assert.fail)), codecTable({ 0: 'PCMU' }));
  p1.put(mixer, loud, 0);
  p2.put(mixer, loud, 0);
  await mixer.close();
  assert.ok(samples(join(dir, 'm.wav')).every((v) => v === 32767));
});
