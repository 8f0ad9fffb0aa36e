// Call recording through the real daemon: record-call in the offer, start/stop/pause recording,
// the files (pcap read by tshark, WAV tones by Goertzel, metadata), the delete reply, the database
// and the HTTP API; an unwritable directory keeps the call's media. In-process and in a worker.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { phone, type Peer } from '../support/media.js';
import { pcmToAlaw, pcmToUlaw } from '../../media/recording/g711.js';
import { createSrtpContext } from '../../media/srtp/context.js';
import { randomBytes } from 'node:crypto';

const hasTshark = spawnSync('tshark', ['-v']).status === 0;
// tshark's RTP heuristic runs first: the test port ranges (20000-29000) hold ports other
// dissectors own (quake3 27950-27963, dnp3 20000, collectd 25826, ...), and a stream on one of
// them was not seen as RTP at all (a flake of 1 run in ~10).

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtprelay-rec-it-'));
  t.after(() => { try { chmodSync(dir, 0o755); } catch { /* gone */ } rmSync(dir, { recursive: true, force: true }); });
  return dir;
}

const sdp = (port: number): string =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 8 101\r\n`
  + 'a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n';
const portOf = (s: unknown): number => Number(/m=audio (\d+)/.exec(String(s))![1]);

/** One 20 ms G.711 packet of a `hz` sine at sample offset seq*160. */
function tone(seq: number, ssrc: number, pt: number, hz: number): Buffer {
  const enc = pt === 8 ? pcmToAlaw : pcmToUlaw;
  const b = Buffer.alloc(12 + 160);
  b[0] = 0x80; b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  for (let i = 0; i < 160; i++) b[12 + i] = enc(Math.round(8000 * Math.sin((2 * Math.PI * hz * (seq * 160 + i)) / 8000)));
  return b;
}

function dtmf(seq: number, ssrc: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x80; b[1] = 101;
  b.writeUInt16BE(seq, 2); b.writeUInt32BE(seq * 160, 4); b.writeUInt32BE(ssrc, 8);
  b[12] = 5; b[13] = 10; b.writeUInt16BE(160, 14);
  return b;
}

function readWav(path: string): Int16Array {
  const b = readFileSync(path);
  assert.equal(b.toString('latin1', 0, 4), 'RIFF');
  assert.equal(b.readUInt32LE(40), b.length - 44, 'data size patched');
  const s = new Int16Array((b.length - 44) / 2);
  for (let i = 0; i < s.length; i++) s[i] = b.readInt16LE(44 + 2 * i);
  return s;
}

function power(s: Int16Array, hz: number, from = 0, to = s.length): number {
  const k = 2 * Math.cos((2 * Math.PI * hz) / 8000);
  let p1 = 0, p2 = 0;
  for (let i = from; i < to; i++) { const p0 = s[i]! + k * p1 - p2; p2 = p1; p1 = p0; }
  return (p1 * p1 + p2 * p2 - k * p1 * p2) / Math.max(1, to - from);
}

function dominant(s: Int16Array, from: number, to: number): number {
  let best = 0, bestHz = 0;
  for (let hz = 100; hz <= 3500; hz += 20) { const p = power(s, hz, from, to); if (p > best) { best = p; bestHz = hz; } }
  return bestHz;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  for (let i = 0; i < ms / 50; i++) { if (fn()) return; await sleep(50); }
  assert.fail(`timed out waiting for ${what}`);
}

interface Call { a: { rtp: Peer; rtcp: Peer }; b: { rtp: Peer; rtcp: Peer }; toB: number; toA: number; offer: Record<string, unknown> }

async function call(t: TestContext, d: Daemon, callId: string, extra: Record<string, string | string[]> = {}): Promise<Call> {
  const a = await phone(t), b = await phone(t);
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': callId, 'from-tag': 'caller', sdp: sdp(a.rtp.port), ...extra });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': callId, 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.rtp.port) });
  assert.equal(answer.result, 'ok');
  return { a, b, toB: portOf(answer.sdp), toA: portOf(offer.sdp), offer };
}

/** A sends PCMU 440 Hz (seq `from`..`to`-1, `skip` left out), B PCMA 1000 Hz, 20 ms apart. */
async function talk(c: Call, from: number, to: number, skip: Set<number> = new Set(), event?: number): Promise<void> {
  for (let seq = from; seq < to; seq++) {
    if (seq === event) await c.a.rtp.send(dtmf(seq, 0xaaaa), c.toB);
    else if (!skip.has(seq)) await c.a.rtp.send(tone(seq, 0xaaaa, 0, 440), c.toB);
    await c.b.rtp.send(tone(seq, 0xbbbb, 8, 1000), c.toA);
    await sleep(20);
  }
}

for (const workers of [0, 1]) {
  const mode = workers ? 'in a media worker' : 'in-process';

  test(`record-call in the offer: pcap for tshark, WAV per party and mixed, metadata, delete reply, database and HTTP (${mode})`, async (t) => {
    const dir = tmp(t);
    const d = await startDaemon(t, [`--recording-dir=${dir}`, '--delete-delay=0', `--media-workers=${workers}`, '--listen-http=127.0.0.1:0']);
    const c = await call(t, d, 'rec-plain', { 'record call': 'yes', metadata: 'k:v|case:1' });
    const rec = c.offer.recordings as string[];
    assert.equal(Array.isArray(rec) && rec.length, 1, 'offer reply lists the pcap as rtpengine 10.5 does');
    assert.equal(Object.keys(c.offer)[0], 'recordings');
    assert.match(rec[0]!, new RegExp(`^${dir}/.*rec-plain.*\\.pcap$`));
    // 50 packets each way; A loses seq 20 and sends a DTMF event in the place of seq 30.
    await talk(c, 0, 50, new Set([20]), 30);
    await sleep(100);
    const q = await d.ng.cmd({ command: 'query', 'call-id': 'rec-plain' });
    assert.deepEqual((q.recording as Record<string, unknown>).files, rec);
    const del = await d.ng.cmd({ command: 'delete', 'call-id': 'rec-plain', 'from-tag': 'caller' });
    assert.equal(del.result, 'ok');
    assert.deepEqual(del.recordings, rec, 'delete reply lists the recording');
    // The caller's stream: 49 packets received (one lost), in rtpengine's SSRC dictionary and the stream.
    const ssrc = del.SSRC as Record<string, Record<string, unknown>>;
    assert.equal(ssrc[String(0xaaaa)]!['cumulative loss'], 1);
    const streams = ((del.tags as any).caller.medias[0].streams) as Record<string, any>[];
    assert.equal(streams[0]!.quality.lost, 1, JSON.stringify(del.tags));
    assert.equal(streams[0]!.quality.received, 49);

    const stem = rec[0]!.slice(0, -'.pcap'.length);
    await waitFor('metadata file', () => existsSync(`${stem}.json`));
    const meta = JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as Record<string, any>;
    assert.equal(meta.callId, 'rec-plain');
    assert.equal(meta.metadata, 'k:v|case:1');
    assert.deepEqual([...meta.tags].sort(), ['callee', 'caller']);
    const streamA = meta.streams.find((s: any) => s.tag === 'caller' && s.kind === 'rtp');
    assert.equal(streamA.codecs['0'], 'PCMU/8000');
    assert.equal(streamA.codecs['101'], 'telephone-event/8000');
    assert.equal(streamA.src.port, c.a.rtp.port, 'the party\'s address');

    if (hasTshark) {
      const out = spawnSync('tshark', ['-r', rec[0]!, '--enable-heuristic', 'rtp_udp', '-o', 'udp.try_heuristic_first:TRUE', '-q', '-z', 'rtp,streams'], { encoding: 'utf8' });
      assert.equal(out.status, 0, out.stderr);
      const rows = out.stdout.split('\n').filter((l) => /0x0000(AAAA|BBBB)/i.test(l));
      assert.equal(rows.length, 2, out.stdout);
      const rowA = rows.find((l) => /0x0000AAAA/i.test(l))!, rowB = rows.find((l) => /0x0000BBBB/i.test(l))!;
      assert.match(rowA, new RegExp(`127\\.0\\.0\\.1\\s+${c.a.rtp.port}\\s+127\\.0\\.0\\.1\\s+${c.toB}`));
      assert.match(rowA, /\s49\s+1 \(/, 'A: 49 packets, 1 lost');
      assert.match(rowB, /g711A/);
      assert.match(rowB, /\s50\s+0 \(/, 'B: 50 packets, none lost');
    }
    // WAV: the caller's 440 Hz (with a silent gap for the lost packet and the DTMF), the callee's 1000 Hz.
    const parties = meta.parties as { tag: string; file: string }[];
    assert.equal(parties.length, 2, JSON.stringify(meta));
    assert.ok(parties.some((p) => p.tag === 'callee') && parties.some((p) => p.tag === 'caller'), JSON.stringify(parties));
    const wa = readWav(parties.find((p) => p.tag === 'caller')!.file);
    const wb = readWav(parties.find((p) => p.tag === 'callee')!.file);
    assert.ok(wa.length >= 49 * 160 && wa.length <= 53 * 160, `caller WAV ~1 s: ${wa.length}`);
    assert.ok(wb.length >= 49 * 160 && wb.length <= 53 * 160, `callee WAV ~1 s: ${wb.length}`);
    assert.equal(dominant(wa, 0, 20 * 160), 440);
    assert.equal(dominant(wb, 0, wb.length), 1000);
    // Silence where the lost packet and the DTMF event were, 10 packets apart: two runs of zeros.
    const first = wa.findIndex((v) => v !== 0);
    const runs: number[] = [];
    for (let i = first, run = 0; i < wa.length; i++) {
      if (wa[i] === 0) run++;
      else { if (run >= 150) runs.push(i - run); run = 0; }
    }
    assert.equal(runs.length, 2, `two silent gaps: ${runs.join(',')}`);
    assert.ok(Math.abs(runs[1]! - runs[0]! - 10 * 160) <= 20, 'gaps 10 packets apart (lost seq 20, DTMF at 30)');
    assert.ok(Math.abs(runs[0]! - first - 20 * 160) <= 160, 'first gap after 20 packets');
    const mix = readWav(`${stem}-mix.wav`);
    assert.ok(power(mix, 440) > 100 * power(mix, 700) && power(mix, 1000) > 100 * power(mix, 700), 'mix holds both tones');

    // The database and the HTTP API list the files; the pcap downloads byte for byte.
    let rows: Record<string, unknown>[] = [];
    for (let i = 0; i < 60 && rows.length < 5; i++) {
      const r = await fetch(`http://127.0.0.1:${d.httpPort}/api/recordings?call=rec-plain`);
      rows = ((await r.json()) as { recordings: Record<string, unknown>[] }).recordings;
      if (rows.length < 5) await sleep(100);
    }
    assert.deepEqual(rows.map((r) => r.kind).sort(), ['metadata', 'mix', 'pcap', 'wav', 'wav']);
    const pcapRow = rows.find((r) => r.kind === 'pcap')!;
    assert.equal(pcapRow.path, rec[0]);
    assert.equal(pcapRow.bytes, readFileSync(rec[0]!).length);
    const viaCall = await (await fetch(`http://127.0.0.1:${d.httpPort}/api/calls/rec-plain/recordings`)).json() as { recordings: unknown[] };
    assert.equal(viaCall.recordings.length, 5);
    if (pcapRow.id !== null) {
      const dl = await fetch(`http://127.0.0.1:${d.httpPort}/api/recordings/${String(pcapRow.id)}`);
      assert.equal(dl.status, 200);
      assert.deepEqual(Buffer.from(await dl.arrayBuffer()), readFileSync(rec[0]!));
    }
    assert.equal((await fetch(`http://127.0.0.1:${d.httpPort}/api/recordings/999999`)).status, 404);
  });
}

test('start/pause/stop recording mid-call cover exactly the recorded interval', async (t) => {
  const dir = tmp(t);
  const d = await startDaemon(t, [`--recording-dir=${dir}`, '--delete-delay=0']);
  const c = await call(t, d, 'rec-mid');
  assert.equal(c.offer.recordings, undefined, 'not recorded yet');
  await talk(c, 0, 10);
  assert.equal((await d.ng.cmd({ command: 'start recording', 'call-id': 'rec-mid', metadata: 'mid' })).result, 'ok');
  await talk(c, 10, 30);
  assert.equal((await d.ng.cmd({ command: 'pause recording', 'call-id': 'rec-mid' })).result, 'ok');
  await talk(c, 30, 45);
  assert.equal((await d.ng.cmd({ command: 'start recording', 'call-id': 'rec-mid' })).result, 'ok');
  await talk(c, 45, 60);
  assert.equal((await d.ng.cmd({ command: 'stop recording', 'call-id': 'rec-mid' })).result, 'ok');
  await talk(c, 60, 70);
  const stems = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.json'));
  await waitFor('metadata', () => stems().length === 1);
  const meta = JSON.parse(readFileSync(join(dir, stems()[0]!), 'utf8')) as Record<string, any>;
  assert.equal(meta.metadata, 'mid');
  assert.equal(meta.intervals.length, 2, 'two recorded intervals');
  const pcap = join(dir, stems()[0]!.replace(/\.json$/, '.pcap'));
  if (hasTshark) {
    const seqs = spawnSync('tshark', ['-r', pcap, '--enable-heuristic', 'rtp_udp', '-o', 'udp.try_heuristic_first:TRUE', '-Y', 'rtp.ssrc == 0xaaaa', '-T', 'fields', '-e', 'rtp.seq'], { encoding: 'utf8' })
      .stdout.trim().split('\n').map(Number);
    const want = [...Array.from({ length: 20 }, (_, i) => 10 + i), ...Array.from({ length: 15 }, (_, i) => 45 + i)];
    assert.deepEqual(seqs, want, 'exactly seq 10-29 and 45-59');
  }
  // The audio files hold the two intervals back to back: 35 packets of 440 Hz.
  const party = readWav(meta.parties.find((p: any) => p.tag === 'caller').file);
  // (plus the few ms between the last packet and the pause, and between resume and the next packet)
  assert.ok(party.length >= 35 * 160 - 160 && party.length <= 40 * 160, `35 packets of audio: ${party.length / 160}`);
  assert.equal(dominant(party, 0, party.length), 440);
  const del = await d.ng.cmd({ command: 'delete', 'call-id': 'rec-mid' });
  assert.equal(del.result, 'ok');
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.json')).length, 1, 'no second recording after stop');
});

test('an unwritable recording directory stops the recording with one error; the call\'s media goes on', async (t) => {
  // A path under a regular file can never be created, even by root (ENOTDIR).
  const base = tmp(t);
  const file = join(base, 'not-a-dir');
  require_file(file);
  const d = await startDaemon(t, [`--recording-dir=${join(file, 'rec')}`, '--delete-delay=0']);
  const c = await call(t, d, 'rec-fail', { flags: ['record-call'] });
  assert.equal((c.offer.recordings as string[]).length, 1);
  for (let seq = 0; seq < 20; seq++) {
    await c.a.rtp.send(tone(seq, 0xaaaa, 0, 440), c.toB);
    const got = await c.b.rtp.recv(1000);
    assert.ok(got, `packet ${seq} relayed`);
    await sleep(10);
  }
  await waitFor('recording error logged', () => d.logs.some((l) => l.msg === 'recording stopped' && l.level === 50));
  assert.equal(d.logs.filter((l) => l.msg === 'recording stopped' && l.level === 50).length, 1, 'one error');
  const q = await d.ng.cmd({ command: 'query', 'call-id': 'rec-fail' });
  assert.equal((q.recording as Record<string, unknown>).state, 'failed');
  assert.equal(((q.totals as any).RTP.packets), 20);
});

function require_file(path: string): void {
  // A regular file where the recording directory's parent should be: mkdir fails with ENOTDIR.
  spawnSync('sh', ['-c', `printf x > '${path}'`]);
  assert.ok(existsSync(path));
}

test('an SDES-SRTP call is recorded decrypted', async (t) => {
  const dir = tmp(t);
  const d = await startDaemon(t, [`--recording-dir=${dir}`, '--delete-delay=0']);
  const a = await phone(t), b = await phone(t);
  // The caller speaks SDES-SRTP (its own key in its a=crypto); the callee is plain RTP/AVP.
  const key = randomBytes(16), salt = randomBytes(14);
  const inline = Buffer.concat([key, salt]).toString('base64');
  const savp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${a.rtp.port} RTP/SAVP 0 8\r\n`
    + `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline}\r\na=sendrecv\r\n`;
  const offer = await d.ng.cmd({ command: 'offer', 'call-id': 'rec-srtp', 'from-tag': 'caller', sdp: savp, 'transport-protocol': 'RTP/AVP', 'record call': 'yes' });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  assert.match(String(offer.sdp), /m=audio \d+ RTP\/AVP 0 8/);
  assert.doesNotMatch(String(offer.sdp), /a=crypto/);
  const answer = await d.ng.cmd({ command: 'answer', 'call-id': 'rec-srtp', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.rtp.port) });
  assert.equal(answer.result, 'ok');
  assert.match(String(answer.sdp), /m=audio \d+ RTP\/SAVP /, 'the caller gets SAVP back');
  const ours = /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:(\S+)/.exec(String(answer.sdp));
  assert.ok(ours, 'our key towards the caller');
  const tx = createSrtpContext('AES_CM_128_HMAC_SHA1_80', key, salt);
  const ourKey = Buffer.from(ours[1]!.split('|')[0]!, 'base64');
  const rx = createSrtpContext('AES_CM_128_HMAC_SHA1_80', ourKey.subarray(0, 16), ourKey.subarray(16, 30));
  const toB = portOf(answer.sdp), toA = portOf(offer.sdp);
  for (let seq = 0; seq < 40; seq++) {
    await a.rtp.send(tx.protectRtp(tone(seq, 0xaaaa, 0, 440))!, toB);
    await b.rtp.send(tone(seq, 0xbbbb, 8, 1000), toA);
    const atB = await b.rtp.recv(1000);
    assert.ok(atB, `packet ${seq} reached the plain callee`);
    assert.deepEqual(atB.msg, tone(seq, 0xaaaa, 0, 440), 'decrypted for the plain side');
    const atA = await a.rtp.recv(1000);
    assert.ok(atA && rx.unprotectRtp(atA.msg), `packet ${seq} reached the caller as SRTP it can decrypt`);
    await sleep(20);
  }
  const del = await d.ng.cmd({ command: 'delete', 'call-id': 'rec-srtp' });
  assert.equal(del.result, 'ok');
  const pcap = (offer.recordings as string[])[0]!;
  const stem = pcap.slice(0, -'.pcap'.length);
  await waitFor('metadata file', () => existsSync(`${stem}.json`));
  if (hasTshark) {
    const out = spawnSync('tshark', ['-r', pcap, '--enable-heuristic', 'rtp_udp', '-o', 'udp.try_heuristic_first:TRUE', '-q', '-z', 'rtp,streams'], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    const rowA = out.stdout.split('\n').find((l) => /0x0000AAAA/i.test(l));
    assert.ok(rowA, out.stdout);
    assert.match(rowA, /g711U/, 'the caller\'s stream is plain PCMU in the pcap (decrypted)');
    assert.match(rowA, /\s40\s+0 \(/, '40 packets, none lost');
  }
  const meta = JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as Record<string, any>;
  const wa = readWav(meta.parties.find((p: any) => p.tag === 'caller').file);
  assert.equal(dominant(wa, 0, wa.length), 440, 'the caller\'s decrypted audio');
});
