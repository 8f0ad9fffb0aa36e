// The dashboard in a real browser: headless Chromium (Debian's) driven by playwright-core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startDaemon } from '../support/daemon.js';
import { mediaPort, phone, rtp, sdp } from '../support/media.js';

const CHROMIUM = '/usr/bin/chromium';

test('dashboard shows a live call with per-stream packets, and its drain button drains the instance', async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('Debian chromium is not installed (.ci/run installs it)');
  const d = await startDaemon(t, ['--listen-http=127.0.0.1:0']);
  const a = await phone(t), b = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': 'dash-call-1', 'from-tag': 'alice', sdp: sdp({ port: a.rtp.port }) });
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': 'dash-call-1', 'from-tag': 'alice', 'to-tag': 'bob', sdp: sdp({ port: b.rtp.port }) });
  for (let i = 0; i < 7; i++) await a.rtp.send(rtp({ seq: i }), mediaPort(answer.sdp as string));
  void offer;
  const shots = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-dashboard-'));
  t.after(() => rmSync(shots, { recursive: true, force: true }));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${d.httpPort}/`);
  await page.waitForSelector('tr[data-call="dash-call-1"]', { timeout: 10_000 });
  const rows = await page.$$eval('tr[data-call="dash-call-1"]', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)));
  assert.ok(rows.some((r) => r[1] === 'alice' && r[2] === 'audio rtp' && r[5] === '7'), JSON.stringify(rows));
  assert.ok(rows.some((r) => r[1] === 'bob'), 'the callee leg is shown');
  assert.equal(await page.textContent('#state'), 'active');
  await page.click('#drain');
  await page.waitForFunction(() => document.getElementById('state')?.textContent === 'draining', undefined, { timeout: 5000 });
  const refused = await d.ng.cmd({ command: 'offer', 'call-id': 'dash-call-2', 'from-tag': 'x', sdp: sdp({ port: 6000 }) });
  assert.equal(refused['error-reason'], 'Parallel session limit reached');
  await page.click('#enable');
  await page.waitForFunction(() => document.getElementById('state')?.textContent === 'active', undefined, { timeout: 5000 });
  await page.screenshot({ path: path.join(shots, 'dashboard.png') });
});
