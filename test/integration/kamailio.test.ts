// SIP-level end to end: Kamailio 5.6 (rtpengine module, configured as for rtpengine) and two
// headless baresip phones make a call whose audio flows through rtprelay. Each phone sends a tone
// from a WAV file; each must record the other's tone. Skipped when kamailio/baresip are missing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startDaemon } from '../support/daemon.js';
import { freeTcpPort, freeUdpPort } from '../support/net.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/kamailio');
const RATE = 8000;

function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* not here */ }
  }
  return null;
}

// ---- WAV tones and their analysis -------------------------------------------------------

/** A mono 16-bit PCM WAV of a sine tone. */
function toneWav(freqHz: number, seconds: number, rate = RATE, amplitude = 0.4): Buffer {
  const n = Math.round(seconds * rate);
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVE', 8);
  b.write('fmt ', 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(rate * 2, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write('data', 36); b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * freqHz * i) / rate)), 44 + 2 * i);
  return b;
}

/** Samples (as -1..1) and rate of a PCM16 WAV; tolerates a header whose sizes were never finalised. */
function readWav(buf: Buffer): { rate: number; channels: number; samples: Float64Array } {
  if (buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  let off = 12, rate = 0, channels = 1, bits = 16;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    let size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      channels = buf.readUInt16LE(off + 10); rate = buf.readUInt32LE(off + 12); bits = buf.readUInt16LE(off + 22);
    } else if (id === 'data') {
      if (bits !== 16) throw new Error(`unsupported WAV sample size ${bits}`);
      if (size === 0 || off + 8 + size > buf.length) size = buf.length - off - 8;
      const frames = Math.floor(size / 2 / channels);
      const samples = new Float64Array(frames);
      for (let i = 0; i < frames; i++) samples[i] = buf.readInt16LE(off + 8 + 2 * i * channels) / 32768;
      return { rate, channels, samples };
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('WAV file has no data chunk');
}

/** Goertzel power of `freqHz` over `x`, normalised by length. */
function goertzel(x: Float64Array, freqHz: number, rate: number): number {
  const w = (2 * Math.PI * freqHz) / rate, c = 2 * Math.cos(w);
  let s1 = 0, s2 = 0;
  for (const v of x) { const s0 = v + c * s1 - s2; s2 = s1; s1 = s0; }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length * x.length);
}

function rms(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return x.length ? Math.sqrt(s / x.length) : 0;
}

// ---- processes, ports, SIP -------------------------------------------------------------

interface Proc { proc: ChildProcess; out: () => string }

/** Spawns a process in its own process group; output is captured (capped). The caller stops it. */
function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Proc {
  const proc = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const keep = (c: Buffer): void => { if (out.length < 400_000) out += c.toString('utf8'); };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, out: () => out };
}

/** SIGTERM to the process group we started (Kamailio forks workers), SIGKILL after 3 s. */
function stopGroup(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return resolve();
    const pid = proc.pid;
    const kill = (sig: NodeJS.Signals): void => { try { process.kill(-pid, sig); } catch { /* gone */ } };
    const timer = setTimeout(() => { kill('SIGKILL'); }, 3000);
    proc.once('exit', () => { clearTimeout(timer); setTimeout(() => kill('SIGKILL'), 0); resolve(); });
    kill('SIGTERM');
  });
}



async function canBind(kind: 'udp' | 'tcp', port: number): Promise<boolean> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((r) => { s.once('error', () => r(false)); s.bind(port, '127.0.0.1', () => r(true)); });
    await new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } });
    return ok;
  }
  const s = net.createServer();
  const ok = await new Promise<boolean>((r) => { s.once('error', () => r(false)); s.listen(port, '127.0.0.1', () => r(true)); });
  if (ok) await new Promise<void>((r) => s.close(() => r()));
  return ok;
}

/** Distinct free SIP ports. baresip also listens on TCP at its SIP port and TLS at SIP port + 1, so those must be free too. */
async function freeSipPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < 100 && ports.length < n; i++) {
    const p = await freeUdpPort();
    if (ports.some((q) => Math.abs(q - p) <= 1)) continue;
    if (await canBind('tcp', p) && await canBind('tcp', p + 1)) ports.push(p);
  }
  if (ports.length < n) throw new Error('no free SIP ports');
  return ports;
}

/** Sends SIP OPTIONS to Kamailio until it answers 200, or throws after `ms`. */
async function waitSipReady(port: number, ms: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const local = s.address().port;
  let ok = false;
  s.on('message', (m) => { if (/^SIP\/2\.0 200/.test(m.toString())) ok = true; });
  try {
    const end = Date.now() + ms;
    for (let i = 0; !ok && Date.now() < end && i < 100; i++) {
      const msg = [
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-probe${i}`,
        'Max-Forwards: 70', `From: <sip:probe@127.0.0.1>;tag=p${i}`, `To: <sip:127.0.0.1:${port}>`,
        `Call-ID: probe-${process.pid}-${i}@127.0.0.1`, `CSeq: ${i + 1} OPTIONS`, 'Content-Length: 0', '', '',
      ].join('\r\n');
      s.send(msg, port, '127.0.0.1');
      await sleep(200);
    }
  } finally { s.close(); }
  if (!ok) throw new Error('Kamailio did not answer OPTIONS');
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

function fill(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (m, k: string) => {
    if (!(k in vars)) throw new Error(`template variable ${m} not given`);
    return String(vars[k]);
  });
}

// ---- baresip over ctrl_tcp (netstring-framed JSON) ------------------------------------

interface Event { type: string; [k: string]: unknown }

class Ctrl {
  events: Event[] = [];
  private readonly responses = new Map<string, (r: { ok: boolean; data: string }) => void>();
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private token = 0;
  constructor(private readonly sock: net.Socket) {
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); });
    sock.on('error', () => { /* the phone went away; waits time out */ });
  }

  static async connect(t: TestContext, port: number, proc: Proc, ms: number): Promise<Ctrl> {
    const end = Date.now() + ms;
    for (let i = 0; i < 100 && Date.now() < end; i++) {
      if (proc.proc.exitCode !== null) break;
      const sock = await new Promise<net.Socket | null>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => resolve(s));
        s.once('error', () => { s.destroy(); resolve(null); });
      });
      if (sock) { t.after(() => sock.destroy()); return new Ctrl(sock); }
      await sleep(100);
    }
    throw new Error(`baresip ctrl_tcp on ${port} not reachable:\n${proc.out()}`);
  }

  private parse(): void {
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      if (colon < 0) return;
      const len = Number(this.buf.toString('latin1', 0, colon));
      if (this.buf.length < colon + 1 + len + 1) return;
      const body = this.buf.toString('utf8', colon + 1, colon + 1 + len);
      this.buf = this.buf.subarray(colon + 2 + len);
      try {
        const j = JSON.parse(body) as Record<string, unknown>;
        if (j.event) this.events.push(j as Event);
        if (j.response && typeof j.token === 'string') this.responses.get(j.token)?.({ ok: j.ok === true, data: String(j.data ?? '') });
      } catch { /* not JSON: ignore */ }
      for (const w of this.waiters.splice(0)) w();
    }
  }

  send(command: string, params?: string): string {
    const token = String(++this.token);
    const j = JSON.stringify({ command, ...(params !== undefined ? { params } : {}), token });
    this.sock.write(`${Buffer.byteLength(j)}:${j},`);
    return token;
  }

  /** Sends a command; resolves with its response text, or null after `ms`. */
  request(command: string, params?: string, ms = 2000): Promise<{ ok: boolean; data: string } | null> {
    return new Promise((resolve) => {
      const token = this.send(command, params);
      const tm = setTimeout(() => { this.responses.delete(token); resolve(null); }, ms);
      this.responses.set(token, (r) => { clearTimeout(tm); this.responses.delete(token); resolve(r); });
    });
  }

  /** Polls `reginfo` until the account shows a successful registration (events before we connected are lost). */
  async waitRegistered(ms: number): Promise<string | null> {
    const end = Date.now() + ms;
    for (let i = 0; i < 100 && Date.now() < end; i++) {
      const last = (await this.request('reginfo'))?.data ?? null;
      if (last !== null && /\bOK\b/.test(last.replace(/\u001b\[[0-9;]*m/gi, ''))) return last;
      await sleep(100);
    }
    return null;
  }

  /** Resolves with the first event of `type` (seen before or later), or null after `ms`. */
  async waitEvent(type: string, ms: number): Promise<Event | null> {
    const end = Date.now() + ms;
    for (;;) {
      const e = this.events.find((x) => x.type === type);
      if (e) return e;
      const left = end - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((r) => { const tm = setTimeout(r, left); this.waiters.push(() => { clearTimeout(tm); r(); }); });
    }
  }
}

// ---- the test --------------------------------------------------------------------------

const kamailio = findBinary('kamailio'), baresip = findBinary('baresip');
const missing = [kamailio ? null : 'kamailio', baresip ? null : 'baresip'].filter(Boolean);

/** rtprelay, Kamailio and two registered phones (alice sends 440 Hz, bob 880 Hz); all stopped when `t` ends. */
async function setup(t: TestContext) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rtprelay-kam-'));
  // Stop in reverse order of start (phones while Kamailio still answers their un-REGISTER).
  const procs: Proc[] = [];
  t.after(async () => {
    for (const p of procs.reverse()) await stopGroup(p.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const d = await startDaemon(t);
  const [sipPort, sipA, sipB] = await freeSipPorts(3) as [number, number, number];

  // Kamailio, foreground, runtime files in the temp dir.
  const runDir = path.join(tmp, 'run');
  fs.mkdirSync(runDir);
  const cfg = path.join(tmp, 'kamailio.cfg');
  fs.writeFileSync(cfg, fill(fs.readFileSync(path.join(FIXTURES, 'kamailio.cfg'), 'utf8'), { SIP_PORT: sipPort, NG_PORT: d.ngPort }));
  const kam = run(kamailio!, ['-DD', '-E', '-f', cfg, '-Y', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-m', '32', '-M', '8', '-w', tmp]);
  procs.push(kam);
  await waitSipReady(sipPort, 10_000).catch((e: Error) => { throw new Error(`${e.message}\n${kam.out()}`); });

  // Two phones: A sends 440 Hz, B sends 880 Hz.
  const rtpBase = 50000 + 2 * Math.floor(Math.random() * 4000);
  const phones = await Promise.all([{ user: 'alice', sip: sipA, freq: 440 }, { user: 'bob', sip: sipB, freq: 880 }].map(async (p, i) => {
    const dir = path.join(tmp, p.user), rec = path.join(dir, 'rec');
    fs.mkdirSync(rec, { recursive: true });
    const tone = path.join(dir, 'tone.wav');
    fs.writeFileSync(tone, toneWav(p.freq, 30));
    // baresip also listens on TCP at its SIP port and TLS at SIP port + 1: keep clear of those.
    let ctrlPort = await freeTcpPort();
    for (let k = 0; k < 20 && [sipA, sipA + 1, sipB, sipB + 1].includes(ctrlPort); k++) ctrlPort = await freeTcpPort();
    fs.writeFileSync(path.join(dir, 'config'), fill(fs.readFileSync(path.join(FIXTURES, 'config'), 'utf8'), {
      SIP_PORT: p.sip, TONE: tone, REC_DIR: rec, RTP_MIN: rtpBase + 100 * i, RTP_MAX: rtpBase + 100 * i + 99, CTRL_PORT: ctrlPort,
    }));
    fs.writeFileSync(path.join(dir, 'accounts'), fill(fs.readFileSync(path.join(FIXTURES, 'accounts'), 'utf8'), { USER: p.user, PROXY_PORT: sipPort }));
    const proc = run(baresip!, ['-f', dir, '-t', '55'], { cwd: dir });
    procs.push(proc);
    const ctrl = await Ctrl.connect(t, ctrlPort, proc, 10_000);
    return { ...p, dir, rec, proc, ctrl };
  }));
  const [a, b] = phones as [typeof phones[0], typeof phones[0]];
  const diag = (): string => [`--- kamailio\n${kam.out()}`, `--- alice\n${a.proc.out()}`, `--- bob\n${b.proc.out()}`,
    `--- rtprelay\n${d.stderr().slice(-20000)}`].join('\n');

  for (const p of phones) assert.ok(await p.ctrl.waitRegistered(10_000), `${p.user} registered\n${diag()}`);

  // rtprelay logs `error` only when a person must act: a clean call through Kamailio never should.
  t.after(() => {
    const errors = d.logs.filter((l) => typeof l.level === 'number' && l.level >= 50);
    assert.deepEqual(errors, [], 'rtprelay logged no errors');
  });
  return { d, sipPort, a, b, diag, kam };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** RTP packets rtprelay received per tag (from-tag/to-tag) of the one call it holds. */
async function packetsPerTag(d: Setup['d'], callId: string): Promise<Record<string, number>> {
  const q = await d.ng.cmd({ command: 'query', 'call-id': callId }) as any;
  assert.equal(q.result, 'ok', JSON.stringify(q));
  const perTag: Record<string, number> = {};
  for (const [tag, v] of Object.entries<any>(q.tags ?? {})) {
    perTag[tag] = 0;
    for (const m of v.medias ?? []) for (const st of m.streams ?? []) if ((st.flags ?? []).includes('RTP')) perTag[tag] += Number(st.stats?.packets ?? 0);
  }
  return perTag;
}

/** Polls until every tag's RTP count reached `min` (at most `ms`); returns the last counts. */
async function waitPackets(d: Setup['d'], callId: string, min: Record<string, number> | number, ms: number): Promise<Record<string, number>> {
  const end = Date.now() + ms;
  let perTag: Record<string, number> = {};
  for (let i = 0; i < 200; i++) {
    perTag = await packetsPerTag(d, callId);
    const need = (tag: string): number => typeof min === 'number' ? min : (min[tag] ?? 0);
    if (Object.keys(perTag).length === 2 && Object.entries(perTag).every(([tag, n]) => n >= need(tag))) break;
    if (Date.now() >= end) break;
    await sleep(100);
  }
  return perTag;
}

async function onlyCall(d: Setup['d']): Promise<string> {
  const list = await d.ng.cmd({ command: 'list' }) as { result: string; calls: string[] };
  assert.equal(list.result, 'ok');
  assert.equal(list.calls.length, 1, `one call in rtprelay: ${JSON.stringify(list)}`);
  return list.calls[0]!;
}

/** Polls `list` until rtprelay holds no call (at most 3 s). */
async function waitNoCalls(d: Setup['d']): Promise<string[]> {
  let calls: string[] = ['?'];
  for (let i = 0; i < 30 && calls.length; i++) {
    calls = (await d.ng.cmd({ command: 'list' }) as { calls: string[] }).calls;
    if (calls.length) await sleep(100);
  }
  return calls;
}

test('a call through Kamailio 5.6 and two baresip phones relays each tone to the other side', { timeout: 60_000 }, async (t) => {
  if (missing.length) { t.skip(`${missing.join(' and ')} not installed (Debian packages; .ci/run installs them)`); return; }
  const started = Date.now();
  const { d, sipPort, a, b, diag } = await setup(t);

  a.ctrl.send('dial', `sip:bob@127.0.0.1:${sipPort}`);
  assert.ok(await a.ctrl.waitEvent('CALL_ESTABLISHED', 10_000), `alice's call established\n${diag()}`);
  assert.ok(await b.ctrl.waitEvent('CALL_ESTABLISHED', 5_000), `bob's call established\n${diag()}`);

  // While the call runs, rtprelay holds it and counts packets in both directions (about 2.5 s of audio).
  const callId = await onlyCall(d);
  await sleep(2000);
  const perTag = await waitPackets(d, callId, 100, 3000);
  assert.equal(Object.keys(perTag).length, 2, `two tags in the query: ${JSON.stringify(perTag)}\n${diag()}`);
  for (const [tag, n] of Object.entries(perTag)) assert.ok(n >= 100, `rtprelay received RTP from ${tag}: ${n} packets\n${diag()}`);

  a.ctrl.send('hangup');
  assert.ok(await a.ctrl.waitEvent('CALL_CLOSED', 5_000), `alice's call closed\n${diag()}`);
  assert.ok(await b.ctrl.waitEvent('CALL_CLOSED', 5_000), `bob's call closed\n${diag()}`);

  // Kamailio's rtpengine_manage() on the BYE deleted the call (delete-delay is 0).
  assert.deepEqual(await waitNoCalls(d), [], `rtprelay's call list is empty after the BYE\n${diag()}`);

  // Each phone recorded (sndfile, "-dec.wav") the other's tone, not its own and not silence.
  for (const [p, other] of [[a, b], [b, a]] as const) {
    const files = fs.readdirSync(p.rec).filter((f) => f.endsWith('dec.wav'));
    assert.equal(files.length, 1, `${p.user} recorded one decoded stream: ${fs.readdirSync(p.rec).join(', ')}\n${diag()}`);
    const wav = readWav(fs.readFileSync(path.join(p.rec, files[0]!)));
    assert.equal(wav.rate, RATE);
    const x = wav.samples;
    assert.ok(x.length >= RATE, `${p.user} recorded at least a second (${x.length} samples)`);
    // Skip the first half second (jitter buffer start-up, comfort silence).
    const body = x.subarray(Math.min(RATE / 2, x.length >> 2));
    const level = rms(body), hear = goertzel(body, other.freq, RATE), own = goertzel(body, p.freq, RATE);
    t.diagnostic(`${p.user}: ${x.length} samples, rms ${level.toFixed(3)}, ${other.freq} Hz ${hear.toExponential(2)}, ${p.freq} Hz ${own.toExponential(2)}`);
    assert.ok(level > 0.05, `${p.user} hears more than silence (rms ${level})`);
    assert.ok(hear > 20 * own, `${p.user} hears ${other.freq} Hz (the other phone), not ${p.freq} Hz: ${hear} vs ${own}`);
    // A pure tone of amplitude A has normalised Goertzel power A²/4; most of the signal is that tone.
    assert.ok(hear > 0.5 * (level * level) / 2, `${other.freq} Hz dominates what ${p.user} hears (${hear} vs rms² ${level * level})`);
  }
  t.diagnostic(`call test took ${Date.now() - started} ms`);
});

test('hold and resume (re-INVITEs through Kamailio) keep the call relayed; a CANCELled call is deleted', { timeout: 60_000 }, async (t) => {
  if (missing.length) { t.skip(`${missing.join(' and ')} not installed (Debian packages; .ci/run installs them)`); return; }
  const { d, sipPort, a, b, diag } = await setup(t);

  a.ctrl.send('dial', `sip:bob@127.0.0.1:${sipPort}`);
  assert.ok(await a.ctrl.waitEvent('CALL_ESTABLISHED', 10_000), `alice's call established\n${diag()}`);
  assert.ok(await b.ctrl.waitEvent('CALL_ESTABLISHED', 5_000), `bob's call established\n${diag()}`);
  const callId = await onlyCall(d);
  const before = await waitPackets(d, callId, 25, 3000);
  assert.equal(Object.keys(before).length, 2, `two tags: ${JSON.stringify(before)}\n${diag()}`);

  // Hold: alice re-INVITEs with a=sendonly; Kamailio sends rtprelay an offer and an answer for the
  // existing call. Then resume: another re-INVITE back to sendrecv. Audio must flow again after it.
  const hold = await a.ctrl.request('hold');
  assert.ok(hold?.ok, `baresip accepted hold: ${JSON.stringify(hold)}`);
  await sleep(700);
  const resume = await a.ctrl.request('resume');
  assert.ok(resume?.ok, `baresip accepted resume: ${JSON.stringify(resume)}`);
  await sleep(300);
  const atResume = await packetsPerTag(d, callId);
  const want = Object.fromEntries(Object.entries(atResume).map(([tag, n]) => [tag, n + 50]));
  const after = await waitPackets(d, callId, want, 5000);
  for (const [tag, n] of Object.entries(after)) {
    assert.ok(n >= want[tag]!, `RTP from ${tag} flows through rtprelay after resume: ${atResume[tag]} -> ${n}\n${diag()}`);
  }
  assert.equal(await onlyCall(d), callId, 'still the same call');
  const cmds = d.logs.filter((l) => l.msg === 'ng request' && l.callId === callId).map((l) => l.command);
  assert.deepEqual(cmds.filter((c) => c === 'offer' || c === 'answer'), ['offer', 'answer', 'offer', 'answer', 'offer', 'answer'],
    `Kamailio sent offer/answer for the INVITE and both re-INVITEs: ${cmds.join(' ')}\n${diag()}`);
  a.ctrl.send('hangup');
  assert.ok(await b.ctrl.waitEvent('CALL_CLOSED', 5_000), `bob's call closed\n${diag()}`);
  assert.deepEqual(await waitNoCalls(d), [], `no call after the BYE\n${diag()}`);

  // A call alice gives up before bob answers: the INVITE's offer creates the call, the CANCEL deletes it.
  const mode = await b.ctrl.request('answermode', 'manual');
  assert.ok(mode?.ok, `baresip accepted answermode: ${JSON.stringify(mode)}`);
  b.ctrl.events.length = 0;
  a.ctrl.events.length = 0;
  a.ctrl.send('dial', `sip:bob@127.0.0.1:${sipPort}`);
  assert.ok(await b.ctrl.waitEvent('CALL_INCOMING', 5_000), `bob's phone rings\n${diag()}`);
  await onlyCall(d);
  a.ctrl.send('hangup');
  assert.ok(await b.ctrl.waitEvent('CALL_CLOSED', 5_000), `bob's ringing call closed by the CANCEL\n${diag()}`);
  assert.deepEqual(await waitNoCalls(d), [], `no call after the CANCEL\n${diag()}`);
});
