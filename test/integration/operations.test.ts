import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import WebSocket from 'ws';
import bencode from 'bencode';
import { encodeBencode } from '../../control/codec.js';
import { FULL_RESERVE } from '../../control/reply-cache.js';
import { knexConfig } from '../../daemon/store.js';
import { plain } from '../support/ng-client.js';
import { MAIN, ROOT, startDaemon, type Daemon } from '../support/daemon.js';
import { mediaPort, phone, rtp, sdp } from '../support/media.js';
import { until } from '../support/net.js';

const CTL = path.join(ROOT, 'dist/admin/ctl.js');

async function http(d: Daemon, method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const r = await fetch(`http://127.0.0.1:${d.httpPort}${p}`, { method, body: body as BodyInit | undefined, headers });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}

function ctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CTL, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 10_000 }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

async function setUpCall(d: Daemon, t: Parameters<typeof phone>[0], callId: string) {
  const a = await phone(t), b = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp({ port: a.rtp.port }) });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: b.rtp.port }) });
  assert.equal(answer.result, 'ok');
  return { a, b, toA: mediaPort(answer.sdp as string), toB: mediaPort(offer.sdp as string) };
}

test('NG over HTTP POST /ng and over WebSocket (ng.rtpengine.com), as rtpengine has them', async (t) => {
  const d = await startDaemon(t, ['--listen-http=127.0.0.1:0']);
  assert.ok(d.httpPort);
  const r = await http(d, 'POST', '/ng', Buffer.concat([Buffer.from('h1 '), encodeBencode({ command: 'ping' })]), { 'content-type': 'application/x-rtpengine-ng' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'h1 d6:result4:ponge');
  assert.equal((await http(d, 'GET', '/ping')).text, 'pong');
  const ws = new WebSocket(`ws://127.0.0.1:${d.httpPort}/`, 'ng.rtpengine.com');
  t.after(() => ws.terminate());
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  assert.equal(ws.protocol, 'ng.rtpengine.com');
  const reply = new Promise<Buffer>((res) => ws.once('message', (m: Buffer) => res(Buffer.from(m))));
  ws.send(Buffer.concat([Buffer.from('w1 '), encodeBencode({ command: 'offer', 'call-id': 'ws1', 'from-tag': 'x', sdp: sdp({ port: 5000 }) })]));
  const body = await reply;
  assert.ok(body.subarray(0, 3).equals(Buffer.from('w1 ')));
  const dict = plain(bencode.decode(body.subarray(3))) as Record<string, string>;
  assert.equal(dict.result, 'ok');
  assert.match(dict.sdp!, /^m=audio \d+ RTP\/AVP 0 8/m);
});

test('JSON API, metrics and rtprelay-ctl show a live call; terminate ends it', async (t) => {
  const d = await startDaemon(t, ['--listen-http=127.0.0.1:0']);
  const { a, b, toA } = await setUpCall(d, t, 'api-call');
  for (let i = 0; i < 4; i++) await a.rtp.send(rtp({ seq: i }), toA);
  for (let i = 0; i < 4; i++) assert.ok(await b.rtp.recv());
  const calls = JSON.parse((await http(d, 'GET', '/api/calls')).text);
  assert.deepEqual(calls.calls.map((c: { callId: string }) => c.callId), ['api-call']);
  const one = JSON.parse((await http(d, 'GET', '/api/calls/api-call')).text);
  assert.equal(one.participants[0].medias[0].streams[0].stats.packets, 4);
  const metrics = await http(d, 'GET', '/metrics');
  assert.match(metrics.type ?? '', /text\/plain/);
  assert.match(metrics.text, /^rtprelay_calls\{state="live"\} 1$/m);
  assert.match(metrics.text, /^rtprelay_packets_total\{kind="rtp"\} 4$/m);
  // How late the 1-ms event-loop samples came (the soak's check reads it; no timing asserted here).
  const late = /^rtprelay_eventloop_delay_seconds\{quantile="0\.99"\} (\S+)$/m.exec(metrics.text);
  assert.ok(late, 'event-loop delay p99 exported');
  assert.ok(Number(late[1]) >= 0, `event-loop delay p99 ${late[1]} s`);
  assert.match(metrics.text, /^rtprelay_ng_commands_total\{command="offer",result="ok"\} 1$/m);
  assert.match(metrics.text, /^rtprelay_ng_latency_seconds_count\{command="answer"\} 1$/m);
  assert.match(metrics.text, /^rtprelay_ports_free\{address="127.0.0.1"\} \d+$/m);
  assert.match(metrics.text, /^rtprelay_instance_state\{state="active"\} 1$/m);
  // The NG reply cache: at least the offer's and the answer's replies, and the slab reserve each
  // caching server sets aside (the main thread's, or each call thread's).
  const cachers = Number(process.env.RTPRELAY_CALL_THREADS ?? 0) || 1;
  assert.match(metrics.text, new RegExp(`^rtprelay_ng_reply_cache_reserve_bytes ${FULL_RESERVE * cachers}$`, 'm'));
  const entries = Number(/^rtprelay_ng_reply_cache_entries (\d+)$/m.exec(metrics.text)?.[1]);
  assert.ok(entries >= 2, `reply cache entries ${entries}`);
  const kept = Number(/^rtprelay_ng_reply_cache_bytes (\d+)$/m.exec(metrics.text)?.[1]);
  assert.ok(kept > 500, `reply cache bytes ${kept}`);

  const url = `http://127.0.0.1:${d.httpPort}`;
  const list = await ctl(['--url', url, 'list']);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^call-id\s+tags/m);
  assert.match(list.out, /^api-call\s+A,B\s+\d+\s+4\s/m);
  const show = await ctl(['--url', url, '--json', 'show', 'api-call']);
  assert.equal(JSON.parse(show.out).callId, 'api-call');
  const viaEnv = await ctl(['totals'], { RTPRELAY_URL: url });
  assert.match(viaEnv.out, /^instance: active$/m);
  const term = await ctl(['--url', url, 'terminate', 'api-call']);
  assert.equal(term.code, 0, term.err);
  assert.deepEqual(await d.ng.cmd({ command: 'query', 'call-id': 'api-call' }), { result: 'error', 'error-reason': 'Unknown call-id' });
  const missing = await ctl(['--url', url, 'show', 'nope']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /404/);
});

test('rtprelay-ctl says clearly when the daemon is not reachable', async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const r = await ctl(['--url', `http://127.0.0.1:${port}`, 'list']);
  assert.equal(r.code, 1);
  assert.match(r.err, /cannot reach rtprelay at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
});

test('drain: new calls refused with the failover reply, running calls go on to the end, then drained; enable accepts again', async (t) => {
  const d = await startDaemon(t, ['--listen-http=127.0.0.1:0']);
  const { a, b, toA } = await setUpCall(d, t, 'running');
  const drained = JSON.parse((await http(d, 'POST', '/api/drain')).text);
  assert.equal(drained.state, 'draining');
  const refused = await d.ng.cmd({ command: 'offer', 'call-id': 'new1', 'from-tag': 'x', sdp: sdp({ port: 6000 }) });
  assert.deepEqual(refused, { result: 'error', 'error-reason': 'Parallel session limit reached' });
  const loadLimit = await d.ng.cmd({ command: 'offer', 'call-id': 'new2', 'from-tag': 'x', sdp: sdp({ port: 6000 }), supports: ['load limit'] });
  assert.equal(loadLimit.result, 'load limit');
  // The running call still relays and can be re-offered (re-INVITE).
  await a.rtp.send(rtp({ seq: 1 }), toA);
  assert.ok(await b.rtp.recv(), 'media of the running call still flows');
  const reoffer = await d.ng.cmd({ command: 'offer', 'call-id': 'running', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: a.rtp.port, origin: 'x' }) });
  assert.equal(reoffer.result, 'ok');
  const reanswer = await d.ng.cmd({ command: 'answer', 'call-id': 'running', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: b.rtp.port, origin: 'y' }) });
  assert.equal(reanswer.result, 'ok', 'the re-INVITE of a running call completes while draining');
  assert.equal(JSON.parse((await http(d, 'GET', '/api/instance')).text).state, 'draining');
  await d.ng.cmd({ command: 'delete', 'call-id': 'running' });
  const deadline = Date.now() + 3000;
  let state = '';
  while (Date.now() < deadline && state !== 'drained') {
    state = JSON.parse((await http(d, 'GET', '/api/instance')).text).state;
    if (state !== 'drained') await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(state, 'drained');
  assert.equal(JSON.parse((await http(d, 'POST', '/api/enable')).text).state, 'active');
  const accepted = await d.ng.cmd({ command: 'offer', 'call-id': 'new3', 'from-tag': 'x', sdp: sdp({ port: 6000 }) });
  assert.equal(accepted.result, 'ok');
});

test('the daemon answers NG within a second whether the database is unreachable or hanging', async (t) => {
  const sockets: net.Socket[] = [];
  const hang = net.createServer((s) => { sockets.push(s); });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
  t.after(() => { for (const s of sockets) s.destroy(); hang.close(); });
  const hangPort = (hang.address() as net.AddressInfo).port;
  // Spawn-to-ping time includes Node's own start, which a busy machine stretches: compare with a
  // daemon that has no database at all, started the same way just before.
  const timeToPing = async (args: string[]): Promise<number> => {
    const started = Date.now();
    const d = await startDaemon(t, args);
    const pong = await d.ng.cmd({ command: 'ping' });
    assert.equal(pong.result, 'pong');
    const ms = Date.now() - started;
    const offer = await d.ng.cmd({ command: 'offer', 'call-id': 'c', 'from-tag': 'x', sdp: sdp({ port: 6000 }) });
    assert.equal(offer.result, 'ok');
    await d.stop();
    return ms;
  };
  const baseline = await timeToPing(['--db-url=none']);
  for (const db of [`postgres://u:p@127.0.0.1:${hangPort}/x`, 'postgres://u:p@127.0.0.1:1/x', `mysql://u:p@127.0.0.1:${hangPort}/x`]) {
    const ms = await timeToPing([`--db-url=${db}`]);
    assert.ok(ms < baseline + 1000, `ping answered ${ms} ms after spawn with ${db}, ${baseline} ms without a database`);
  }
});

test('SIGTERM drains: exits only when the last call ends; a second signal exits at once', async (t) => {
  const d = await startDaemon(t, ['--shutdown-timeout=20']);
  await setUpCall(d, t, 'sig');
  const exited = new Promise<number | null>((r) => d.proc.once('exit', (c) => r(c)));
  d.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(d.proc.exitCode, null, 'still running while a call is up');
  const refused = await d.ng.cmd({ command: 'offer', 'call-id': 'late', 'from-tag': 'x', sdp: sdp({ port: 6000 }) });
  assert.equal(refused['error-reason'], 'Parallel session limit reached');
  const del = await d.ng.cmd({ command: 'delete', 'call-id': 'sig' });
  assert.equal(del.result, 'ok');
  assert.equal(await exited, 0);

  const d2 = await startDaemon(t, ['--shutdown-timeout=20']);
  await setUpCall(d2, t, 'sig2');
  const exited2 = new Promise<number | null>((r) => d2.proc.once('exit', (c) => r(c)));
  d2.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(d2.proc.exitCode, null);
  d2.proc.kill('SIGINT');
  assert.equal(await exited2, 0);
});

test('a restart after SIGTERM accepts new calls and enables Kamailio\'s row again; an explicit drain survives the restart', async (t) => {
  // systemctl restart: SIGTERM, then start again on the same state directory (local file, SQLite).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-restart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const url = 'udp:127.0.0.1:2223';
  const args = [`--state-dir=${dir}`, `--instance-url=${url}`, '--listen-http=127.0.0.1:0', '--shutdown-timeout=20'];
  const db = knexFactory(knexConfig(`sqlite:${path.join(dir, 'rtprelay.sqlite')}`));
  t.after(() => db.destroy());
  const rows = async () => {
    const [kam, mine] = await Promise.all([db('rtpengine').where({ url }).first(), db('rtprelay_instances').where({ url }).first()]);
    return { disabled: Number(kam.disabled), wanted: mine.wanted, state: mine.state, startedMs: Number(mine.started_ms), heartbeatMs: Number(mine.heartbeat_ms) };
  };
  // Started, and polled the database once: its start time registered, a heartbeat written after it.
  const start = async (): Promise<Daemon> => {
    const before = Date.now();
    const d = await startDaemon(t, args);
    await until(async () => { const r = await rows(); return r.startedMs >= before && r.heartbeatMs >= r.startedMs; }, 'the first database poll');
    return d;
  };
  const sigterm = async (d: Daemon): Promise<void> => {
    const exited = new Promise<number | null>((r) => d.proc.once('exit', (c) => r(c)));
    d.proc.kill('SIGTERM');
    assert.equal(await exited, 0);
  };
  const offer = async (d: Daemon, callId: string) => (await d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'x', sdp: sdp({ port: 6000 }) }));

  const d1 = await start();
  await setUpCall(d1, t, 'running');
  const exited = new Promise<number | null>((r) => d1.proc.once('exit', (c) => r(c)));
  d1.proc.kill('SIGTERM');
  // While the call runs: draining, and Kamailio's row disabled so that Kamailio sends new calls elsewhere.
  await until(async () => (await rows()).disabled === 1, 'Kamailio\'s row disabled during the shutdown drain');
  assert.equal((await rows()).state, 'draining');
  assert.equal(JSON.parse((await http(d1, 'GET', '/api/instance')).text).state, 'draining');
  assert.equal((await offer(d1, 'late'))['error-reason'], 'Parallel session limit reached');
  assert.equal((await d1.ng.cmd({ command: 'delete', 'call-id': 'running' })).result, 'ok');
  assert.equal(await exited, 0);
  assert.deepEqual(await rows().then((r) => [r.disabled, r.wanted, r.state]), [1, 'active', 'drained']);

  // The next start is active: new calls accepted, Kamailio's row enabled again.
  const d2 = await start();
  assert.equal((await offer(d2, 'after-restart')).result, 'ok', 'a restarted instance accepts new calls');
  assert.deepEqual(await rows().then((r) => [r.disabled, r.wanted, r.state]), [0, 'active', 'active']);
  await d2.ng.cmd({ command: 'delete', 'call-id': 'after-restart' });

  // Drained by the operator, then restarted: still draining, Kamailio's row still disabled.
  assert.equal(JSON.parse((await http(d2, 'POST', '/api/drain')).text).state, 'drained');
  await until(async () => (await rows()).wanted === 'draining', 'the drain written to the database');
  await sigterm(d2);
  const d3 = await start();
  assert.equal((await offer(d3, 'refused'))['error-reason'], 'Parallel session limit reached');
  assert.deepEqual(await rows().then((r) => [r.disabled, r.wanted, r.state]), [1, 'draining', 'drained']);

  // Enabled during the shutdown drain (a call still up): the next start is active.
  assert.equal(JSON.parse((await http(d3, 'POST', '/api/enable')).text).state, 'active');
  await setUpCall(d3, t, 'running3');
  const exited3 = new Promise<number | null>((r) => d3.proc.once('exit', (c) => r(c)));
  d3.proc.kill('SIGTERM');
  await until(async () => (await rows()).disabled === 1, 'Kamailio\'s row disabled during the shutdown drain');
  assert.equal(JSON.parse((await http(d3, 'POST', '/api/disable')).text).state, 'disabled');
  await until(async () => (await rows()).wanted === 'disabled', 'the disable written to the database');
  assert.equal((await d3.ng.cmd({ command: 'delete', 'call-id': 'running3' })).result, 'ok');
  assert.equal(await exited3, 0);
  const d4 = await start();
  assert.equal((await offer(d4, 'refused4'))['error-reason'], 'Parallel session limit reached', 'disabled during the shutdown: still disabled');
  assert.deepEqual(await rows().then((r) => [r.disabled, r.wanted, r.state]), [1, 'disabled', 'disabled']);
});

test('SIGTERM with a call that never ends exits after the shutdown timeout', async (t) => {
  const d = await startDaemon(t, ['--shutdown-timeout=1']);
  await setUpCall(d, t, 'stuck');
  const started = Date.now();
  const exited = new Promise<number | null>((r) => d.proc.once('exit', (c) => r(c)));
  d.proc.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.ok(Date.now() - started >= 900, 'waited for the timeout');
});

test('an HTTP listener off loopback needs a bearer token, and then requires it', async (t) => {
  const bad = spawn(process.execPath, [MAIN, '--config-file=none', '--listen-ng=127.0.0.1:0', '--listen-http=0.0.0.0:0', '--db-url=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  bad.stderr!.on('data', (c) => { err += c; });
  const code = await new Promise<number | null>((r) => bad.once('exit', (c) => r(c)));
  assert.equal(code, 1);
  assert.match(err, /--http-token/);
  const d = await startDaemon(t, ['--listen-http=127.0.0.1:0', '--http-token=s3cret']);
  assert.equal((await http(d, 'GET', '/api/calls')).status, 401);
  assert.equal((await http(d, 'GET', '/api/calls', undefined, { authorization: 'Bearer s3cret' })).status, 200);
  assert.equal((await http(d, 'GET', '/api/calls', undefined, { authorization: 'Bearer wrong!' })).status, 401);
});

test('rtprelay-ctl instances/add/remove edit the instances table and ask Kamailio to rtpengine.reload', async (t) => {
  const { createServer } = await import('node:http');
  const rpcCalls: unknown[] = [];
  const rpc = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { rpcCalls.push(JSON.parse(body)); res.setHeader('content-type', 'application/json'); res.end('{"jsonrpc":"2.0","result":{},"id":1}'); });
  });
  await new Promise<void>((r) => rpc.listen(0, '127.0.0.1', () => r()));
  t.after(() => rpc.close());
  const rpcUrl = `http://127.0.0.1:${(rpc.address() as net.AddressInfo).port}/RPC`;
  const d = await startDaemon(t, ['--listen-http=127.0.0.1:0', '--instance-url=udp:127.0.0.1:2223', `--kamailio-rpc-url=${rpcUrl}`]);
  const url = `http://127.0.0.1:${d.httpPort}`;
  let list = { code: 1, out: '', err: '' };
  for (let i = 0; i < 50 && !/udp:127\.0\.0\.1:2223/.test(list.out); i++) {
    list = await ctl(['--url', url, 'instances']);
    if (!/udp:127\.0\.0\.1:2223/.test(list.out)) await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(list.out, /udp:127\.0\.0\.1:2223\s+1\s+0\s/m, list.out + list.err);
  const add = await ctl(['--url', url, 'add', 'udp:127.0.0.7:2223', '--weight', '3']);
  assert.equal(add.code, 0, add.err);
  assert.match(add.out, /added udp:127\.0\.0\.7:2223 \(Kamailio reloaded\)/);
  assert.deepEqual(rpcCalls, [{ jsonrpc: '2.0', method: 'rtpengine.reload', id: 1 }]);
  const json = JSON.parse((await ctl(['--url', url, '--json', 'instances'])).out);
  assert.deepEqual(json.instances.map((i: { url: string; weight: number }) => [i.url, i.weight]).sort(), [['udp:127.0.0.1:2223', 1], ['udp:127.0.0.7:2223', 3]]);
  const rm = await ctl(['--url', url, 'remove', 'udp:127.0.0.7:2223']);
  assert.equal(rm.code, 0, rm.err);
  assert.equal(rpcCalls.length, 2);
  const bad = await ctl(['--url', url, 'add', 'not-a-url']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /udp:HOST:PORT/);
  const gone = await ctl(['--url', url, 'remove', 'udp:127.0.0.7:2223']);
  assert.equal(gone.code, 1);
  assert.match(gone.err, /no such instance/);
});

test('rtprelay-ctl drain, disable and enable change the instance state', async (t) => {
  const d = await startDaemon(t, ['--listen-http=127.0.0.1:0']);
  const url = `http://127.0.0.1:${d.httpPort}`;
  const drain = await ctl(['--url', url, 'drain']);
  assert.equal(drain.code, 0, drain.err);
  assert.equal(drain.out.trim(), 'instance is drained', 'no calls: draining is drained at once');
  const refused = await d.ng.cmd({ command: 'offer', 'call-id': 'ctl1', 'from-tag': 'x', sdp: sdp({ port: 6000 }) });
  assert.equal(refused['error-reason'], 'Parallel session limit reached');
  assert.equal((await ctl(['--url', url, 'disable'])).out.trim(), 'instance is disabled');
  assert.equal(JSON.parse((await ctl(['--url', url, '--json', 'enable'])).out).state, 'active');
  const accepted = await d.ng.cmd({ command: 'offer', 'call-id': 'ctl2', 'from-tag': 'x', sdp: sdp({ port: 6000 }) });
  assert.equal(accepted.result, 'ok');
});
