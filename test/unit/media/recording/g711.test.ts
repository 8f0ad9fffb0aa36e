import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALAW_TO_PCM, ULAW_TO_PCM, pcmToAlaw, pcmToUlaw } from '../../../../media/recording/g711.js';

test('G.711 decode: zero, extremes and sign conventions', () => {
  assert.equal(ULAW_TO_PCM[0xff], 0, 'μ-law 0xff is +0');
  assert.equal(ULAW_TO_PCM[0x7f], 0, 'μ-law 0x7f is -0');
  assert.equal(ULAW_TO_PCM[0x80], 32124);
  assert.equal(ULAW_TO_PCM[0x00], -32124);
  assert.equal(ALAW_TO_PCM[0xd5], 8, 'A-law 0xd5 is the smallest positive step');
  assert.equal(ALAW_TO_PCM[0x55], -8);
  assert.equal(ALAW_TO_PCM[0xaa], 32256);
  assert.equal(ALAW_TO_PCM[0x2a], -32256);
});

test('G.711 encoders invert the decoders: each code round-trips, any sample comes back within a step', () => {
  for (const [name, table, enc] of [['μ', ULAW_TO_PCM, pcmToUlaw], ['A', ALAW_TO_PCM, pcmToAlaw]] as const) {
    const values = [...table].sort((a, b) => a - b);
    assert.equal(new Set(values).size, name === 'μ' ? 255 : 256, `${name}: distinct levels`);
    for (let v = -32768; v <= 32767; v += 7) {
      const back = table[enc(v)]!;
      // Quantisation error stays within half a step of the segment (step = 2^(seg+1) for A-law, 2^(seg+3)/… for μ-law).
      const tol = Math.max(16, Math.abs(v) / 16) + 4;
      assert.ok(Math.abs(back - Math.max(-32256, Math.min(32256, v))) <= tol, `${name}-law ${v} → ${back}`);
    }
    for (let code = 0; code < 256; code++) assert.equal(table[enc(table[code]!)], table[code], `${name}: code ${code} round-trips`);
  }
});
