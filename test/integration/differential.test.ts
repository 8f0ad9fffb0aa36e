// Differential SDP test: replays every scenario of test/differential/scenarios.ts against
// rtprelay and compares the normalised replies with what rtpengine 10.5 replied to the same
// requests (recorded by test/differential/record.ts into test/fixtures/differential/).
// Deliberate differences are listed per scenario (`allow`), with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startDaemon } from '../support/daemon.js';
import { INTERFACES, SCENARIOS } from '../differential/scenarios.js';
import { applyAllowList, renumber, replay, withoutSkipped, type NormalReply } from '../differential/replay.js';

const RANGE = { min: 24000, max: 24999 };

function expected(name: string): NormalReply[] {
  const file = path.join(ROOT, 'test/fixtures/differential', `${name}.json`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { replies: NormalReply[] }).replies;
}

test('SDP output matches rtpengine 10.5', async (t) => {
  // startDaemon always brings 127.0.0.1 as the first (default) address; add the rest.
  assert.equal(INTERFACES[0], '127.0.0.1');
  const d = await startDaemon(t, [
    ...INTERFACES.slice(1).map((i) => `--interface=${i}`), `--port-min=${RANGE.min}`, `--port-max=${RANGE.max}`,
  ]);
  const only = process.env.DIFF_SCENARIO;
  for (const s of SCENARIOS) {
    if (only && only !== s.name) continue;
    await t.test(s.name, async () => {
      const got = await replay(s, (dict) => d.ng.cmd(dict), RANGE, `diff-${s.name}`);
      assert.deepEqual(renumber(withoutSkipped(s, got)), applyAllowList(s, expected(s.name)), s.about);
    });
  }
});
