import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN, portRange, startDaemon } from '../support/daemon.js';

/** Runs the daemon binary to its exit (bounded): exit code and stderr. */
function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

const BASE = ['--config-file=none', '--listen-ng=127.0.0.1:0', '--interface=127.0.0.1', ...portRange(20)];

test('bad options end the daemon at start with exit code 1 and a message naming the option', async () => {
  const cases: [string[], RegExp][] = [
    [['--timeout=abc'], /--timeout: "abc" is not a whole number/],
    [['--port-min=5000', '--port-max=4000'], /--port-max/],
    [['--bogus-option'], /unknown option --bogus-option/],
    [['--interface=not-an-address'], /--interface/],
    [['--interface=192.0.2.1'], /--interface 192\.0\.2\.1: cannot bind/],
    [['--config-file=/nonexistent/rtprelay.conf'], /cannot read config file/],
    [['--pidfile=/nonexistent-dir/rtprelay.pid'], /cannot write --pidfile/],
  ];
  for (const [args, message] of cases) {
    const r = await run([...BASE, ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
});

test('rtpengine\'s own command line runs; unimplemented options warn; pidfile written and removed', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rtprelay-'));
  const pidfile = path.join(dir, 'rtprelay.pid');
  const d = await startDaemon(t, ['--table=-1', '--foreground', '--interface=::1', '--no-fallback', '--tos=184',
    '--recording-dir=/var/spool/rtpengine', '--recording-method=proc', `--pidfile=${pidfile}`]);
  assert.equal((await d.ng.cmd({ command: 'ping' })).result, 'pong');
  const warned = d.logs.filter((l) => l.level === 40).map((l) => String(l.msg));
  for (const opt of ['table', 'no-fallback', 'tos', 'recording-method']) {
    assert.ok(warned.some((m) => m.includes(`--${opt} `)), `warning for --${opt}: ${warned.join('; ')}`);
  }
  assert.ok(!warned.some((m) => m.includes('--recording-dir ')), 'recording-dir is implemented, not warned about');
  assert.equal(readFileSync(pidfile, 'utf8').trim(), String(d.proc.pid));
  assert.equal(await d.stop(), 0);
  assert.equal(existsSync(pidfile), false, 'pidfile removed on SIGTERM');
});

test('reads an rtpengine config file ([rtpengine] section, ; lists, unknown keys ignored)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rtprelay-'));
  const file = path.join(dir, 'rtpengine.conf');
  const [min, max] = portRange(20).map((a) => a.split('=')[1]);
  writeFileSync(file, [
    '[rtpengine]', 'table = -1', 'interface = 127.0.0.1;::1', `port-min = ${min}`, `port-max = ${max}`,
    'timeout = 60', 'delete-delay = 0', 'mqtt-host = localhost', 'some-future-option = yes', '',
  ].join('\n'));
  // startDaemon adds its own port range unless --port-min is given: repeat the file's.
  const d = await startDaemon(t, [`--config-file=${file}`, `--port-min=${min}`]);
  const stats = await d.ng.cmd({ command: 'statistics' }) as any;
  assert.equal(stats.result, 'ok');
  const v4 = stats.statistics.interfaces.find((i: any) => i.address === '127.0.0.1');
  assert.equal(v4.ports.free, 20, 'port-max from the file: 10 pairs, 20 ports');
  const warned = d.logs.filter((l) => l.level === 40).map((l) => String(l.msg));
  assert.ok(warned.some((m) => m.includes('unknown key "some-future-option"')), warned.join('; '));
  assert.ok(warned.some((m) => m.includes('--mqtt-host')), warned.join('; '));
});

test('--max-sessions refuses new calls (load limit for clients that support it); existing calls go on', async (t) => {
  const d = await startDaemon(t, ['--max-sessions=1']);
  const offer = (callId: string, extra: Record<string, any> = {}) =>
    d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n', ...extra });
  assert.equal((await offer('one')).result, 'ok');
  assert.deepEqual(await offer('two'), { result: 'error', 'error-reason': 'Parallel session limit reached' });
  assert.deepEqual(await offer('two', { supports: ['load limit'] }), { result: 'load limit', message: 'Parallel session limit reached' });
  assert.equal((await offer('one')).result, 'ok', 'the existing call is unaffected');
  assert.equal((await d.ng.cmd({ command: 'answer', 'call-id': 'one', 'from-tag': 'A', 'to-tag': 'B',
    sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n' })).result, 'ok');
  assert.equal((await d.ng.cmd({ command: 'delete', 'call-id': 'one' })).result, 'ok');
  assert.equal((await offer('two')).result, 'ok', 'a slot is free again');
});
