// ITU-T G.711 companding: μ-law and A-law bytes to and from linear 16-bit PCM.
// Written from the G.711 segment tables (8 segments, 4-bit mantissa). Imports nothing.

/** μ-law byte → PCM16. G.711 table 2: bits are sent inverted; bias 0x84 (33 in 14-bit units ×4). */
export const ULAW_TO_PCM = new Int16Array(256);
/** A-law byte → PCM16. G.711 table 1: even bits are inverted (XOR 0x55); sign bit 1 is positive. */
export const ALAW_TO_PCM = new Int16Array(256);

for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const uMag = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84;
  ULAW_TO_PCM[i] = u & 0x80 ? -uMag : uMag;

  const a = i ^ 0x55;
  const seg = (a >> 4) & 7;
  // Segment 0 is linear; every later segment doubles the step. The +8 / +0x108 put the
  // decoded value in the middle of the quantisation interval.
  const aMag = seg === 0 ? ((a & 0x0f) << 4) + 8 : (((a & 0x0f) << 4) + 0x108) << (seg - 1);
  ALAW_TO_PCM[i] = a & 0x80 ? aMag : -aMag;
}

/** Highest segment whose top bit `v` reaches: floor(log2(v)) - shift, clamped to 0..7. */
function segment(v: number, shift: number): number {
  let seg = 31 - Math.clz32(v) - shift;
  if (seg < 0) seg = 0;
  return seg > 7 ? 7 : seg;
}

export function pcmToUlaw(sample: number): number {
  let s = sample | 0;
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > 32635) s = 32635; // so that s + bias stays in segment 7
  s += 0x84;
  const seg = segment(s, 7);
  return ~(sign | (seg << 4) | ((s >> (seg + 3)) & 0x0f)) & 0xff;
}

export function pcmToAlaw(sample: number): number {
  let s = sample | 0;
  const sign = s >= 0 ? 0x80 : 0;
  if (s < 0) s = -s - 1;
  if (s > 32767) s = 32767;
  const seg = s < 256 ? 0 : segment(s, 7);
  const mant = seg === 0 ? (s >> 4) & 0x0f : (s >> (seg + 3)) & 0x0f;
  return (sign | (seg << 4) | mant) ^ 0x55;
}

/** Decodes `payload` into `out` at `offset` with a 256-entry table; returns samples written. */
export function decodeInto(table: Int16Array, payload: Uint8Array, out: Int16Array, offset: number): number {
  const n = Math.min(payload.length, out.length - offset);
  for (let i = 0; i < n; i++) out[offset + i] = table[payload[i]!]!;
  return n;
}
