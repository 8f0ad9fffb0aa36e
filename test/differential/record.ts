// Records rtpengine 10.5's replies to every differential scenario into
// test/fixtures/differential/<name>.json. Run by hand (CI only reads the fixtures):
//   npx tsc -p . && node dist/test/differential/record.js [scenario-name …]
// It starts its own rtpengine on 127.0.0.1 (NG port 22400, media ports 22500-23499).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NgClient } from '../support/ng-client.js';
import { ROOT } from '../support/daemon.js';
import { INTERFACES, SCENARIOS } from './scenarios.js';
import { replay, type PortRange } from './replay.js';

const NG_PORT = 22400;
const RANGE: PortRange = { min: 22500, max: 23499 };
export const FIXTURE_DIR = path.join(ROOT, 'test/fixtures/differential');

async function main(): Promise<void> {
  const only = new Set(process.argv.slice(2));
  const args = [
    '--config-file=none', '--table=-1', '--foreground', '--log-stderr', '--log-level=6',
    ...INTERFACES.map((i) => `--interface=${i}`), `--listen-ng=127.0.0.1:${NG_PORT}`,
    `--port-min=${RANGE.min}`, `--port-max=${RANGE.max}`, '--delete-delay=0',
  ];
  const proc = spawn('rtpengine', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const ng = new NgClient(NG_PORT);
  try {
    // Bounded wait for the NG socket: 50 pings, 200 ms apart at most.
    let up = false;
    for (let i = 0; i < 50 && !up; i++) {
      up = (await ng.raw('d7:command4:pinge', `rec_ping_${i}`, 200)) !== null;
    }
    if (!up) throw new Error('rtpengine did not answer ping:\n' + stderr);
    mkdirSync(FIXTURE_DIR, { recursive: true });
    for (const s of SCENARIOS) {
      if (only.size && !only.has(s.name)) continue;
      const replies = await replay(s, (d) => ng.cmd(d), RANGE, `diff-${s.name}`);
      const fixture = { scenario: s.name, about: s.about, recordedWith: 'rtpengine 10.5.3.5', replies };
      writeFileSync(path.join(FIXTURE_DIR, `${s.name}.json`), JSON.stringify(fixture, null, 2) + '\n');
      console.log(`recorded ${s.name}`);
    }
  } finally {
    ng.close();
    proc.kill('SIGTERM');
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
