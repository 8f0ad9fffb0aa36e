import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon, releasePages } from '../../../media/native-addon.js';

test('releasePages gives back the whole pages inside a buffer: they read as zeros, the partial pages at its ends are kept', (t) => {
  const block = Buffer.allocUnsafeSlow(4 << 20).fill(0xaa);
  // Neither end on a page boundary.
  const buf = block.subarray(1000, (3 << 20) + 1000);
  const released = releasePages(buf);
  if (!nativeAddon()) {
    assert.equal(released, null, 'nothing to do it without the addon');
    return t.skip('native addon not built');
  }
  assert.ok(released !== null && released >= (3 << 20) - 8192 && released <= 3 << 20, `released ${released}`);
  const zeros = buf.reduce((n, b) => n + (b === 0 ? 1 : 0), 0);
  assert.equal(zeros, released, 'the released bytes, and only they, read as zeros');
  assert.equal(buf[0], 0xaa, 'the partial first page is kept');
  assert.equal(buf[buf.length - 1], 0xaa, 'the partial last page is kept');
  assert.equal(block[999], 0xaa, 'nothing outside the buffer');
  assert.equal(block[buf.byteOffset + buf.length], 0xaa);
  buf.fill(0x55);
  assert.ok(buf.every((b) => b === 0x55), 'the pages are usable again');
});
