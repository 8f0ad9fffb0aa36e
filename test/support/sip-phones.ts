// SIP phones for the Kamailio tests: headless baresip 1.0 phones driven over ctrl_tcp, Kamailio
// started from a fixture template, tone WAV files and their analysis (Goertzel), and the NG query
// helpers that count what rtprelay relayed per tag. Shared by kamailio.test.ts and
// kamailio-srtp.test.ts. Loopback only, or a phone in a network namespace of the test's own
// (netns.ts); every process started here is stopped by its group id.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startDaemon } from './daemon.js';
import { freeTcpPort, freeUdpPort } from './net.js';
import type { Netns } from './netns.js';

export const RATE = 8000;

export function findBinary(name: string): string | null {
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
export function toneWav(freqHz: number, seconds: number, rate = RATE, amplitude = 0.4): Buffer {
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
export function readWav(buf: Buffer): { rate: number; channels: number; samples: Float64Array } {
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
export function goertzel(x: Float64Array, freqHz: number, rate: number): number {
  const w = (2 * Math.PI * freqHz) / rate, c = 2 * Math.cos(w);
  let s1 = 0, s2 = 0;
  for (const v of x) { const s0 = v + c * s1 - s2; s2 = s1; s1 = s0; }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length * x.length);
}

export function rms(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return x.length ? Math.sqrt(s / x.length) : 0;
}

// ---- processes, ports, SIP -------------------------------------------------------------

export interface Proc { proc: ChildProcess; out: () => string }

/** Spawns a process in its own process group; output is captured (capped). The caller stops it. */
export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Proc {
  const proc = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const keep = (c: Buffer): void => { if (out.length < 400_000) out += c.toString('utf8'); };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, out: () => out };
}

/** SIGTERM to the process group we started (Kamailio forks workers), SIGKILL after 3 s. */
export function stopGroup(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return resolve();
    const pid = proc.pid;
    const kill = (sig: NodeJS.Signals): void => { try { process.kill(-pid, sig); } catch { /* gone */ } };
    const timer = setTimeout(() => { kill('SIGKILL'); }, 3000);
    proc.once('exit', () => { clearTimeout(timer); setTimeout(() => kill('SIGKILL'), 0); resolve(); });
    kill('SIGTERM');
  });
}

export async function canBind(kind: 'udp' | 'tcp', port: number): Promise<boolean> {
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

/**
 * Distinct free SIP ports. baresip also listens on TCP at its SIP port and TLS at SIP port + 1, so
 * those must be free too. Taken at random from 10000-11999, below the kernel's ephemeral range:
 * a port the kernel handed out for an outgoing connection may sit in TIME_WAIT, which Node's bind
 * check (SO_REUSEADDR) accepts and baresip's does not.
 */
export async function freeSipPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < 200 && ports.length < n; i++) {
    const p = 10000 + 2 * Math.floor(Math.random() * 1000);
    if (ports.some((q) => Math.abs(q - p) <= 1)) continue;
    if (await canBind('udp', p) && await canBind('tcp', p) && await canBind('tcp', p + 1)) ports.push(p);
  }
  if (ports.length < n) throw new Error('no free SIP ports');
  return ports;
}

/** Sends SIP OPTIONS to Kamailio until it answers 200, or throws after `ms`. */
export async function waitSipReady(port: number, ms: number): Promise<void> {
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

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

export function fill(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (m, k: string) => {
    if (!(k in vars)) throw new Error(`template variable ${m} not given`);
    return String(vars[k]);
  });
}

// ---- baresip over ctrl_tcp (netstring-framed JSON) ------------------------------------

export interface Event { type: string; [k: string]: unknown }

export class Ctrl {
  events: Event[] = [];
  private readonly responses = new Map<string, (r: { ok: boolean; data: string }) => void>();
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private token = 0;
  constructor(private readonly sock: net.Socket) {
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); });
    sock.on('error', () => { /* the phone went away; waits time out */ });
  }

  static async connect(t: TestContext, port: number, proc: Proc, ms: number, host = '127.0.0.1'): Promise<Ctrl> {
    const end = Date.now() + ms;
    for (let i = 0; i < 100 && Date.now() < end; i++) {
      if (proc.proc.exitCode !== null) break;
      const sock = await new Promise<net.Socket | null>((resolve) => {
        const s = net.connect(port, host);
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

// ---- Kamailio, rtprelay and two registered phones ------------------------------------

export const kamailioBin = findBinary('kamailio'), baresipBin = findBinary('baresip');
/** What is missing to run the SIP-level tests ([] when kamailio and baresip are installed). */
export const missingSipTools = [kamailioBin ? null : 'kamailio', baresipBin ? null : 'baresip'].filter((x): x is string => x !== null);

export interface PhoneSpec {
  user: string;
  freq: number;
  /** More template variables for this phone's `config` and `accounts`. */
  vars?: Record<string, string | number>;
  /**
   * Run the phone in this network namespace (created by the test): it listens (SIP, ctrl_tcp) on
   * the namespace's address and reaches Kamailio at the host side of the veth, which Kamailio must
   * listen on too (kamailioVars).
   */
  netns?: Netns;
}

export interface SipSetupOptions {
  /** Directory with the `kamailio.cfg`, `config` (baresip) and `accounts` templates. */
  fixtures: string;
  /** Two phones, caller first; default alice 440 Hz and bob 880 Hz. */
  phones?: [PhoneSpec, PhoneSpec];
  /** More template variables for kamailio.cfg (SIP_PORT and NG_PORT are always given). */
  kamailioVars?: Record<string, string | number>;
  daemonArgs?: string[];
}

/**
 * rtprelay, Kamailio and two registered phones, each sending its tone from a WAV file and
 * recording what it decodes; all stopped when `t` ends. Template variables: kamailio.cfg gets
 * SIP_PORT, NG_PORT; config gets ADDR (the phone's address: 127.0.0.1, or its namespace's),
 * SIP_PORT, TONE, REC_DIR, RTP_MIN, RTP_MAX, CTRL_PORT; accounts gets USER, PROXY_HOST (where it
 * reaches Kamailio), PROXY_PORT; plus the phone's own `vars`.
 */
export async function startSipSetup(t: TestContext, o: SipSetupOptions) {
  if (!kamailioBin || !baresipBin) throw new Error(`${missingSipTools.join(' and ')} not installed`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rtprelay-kam-'));
  // Stop in reverse order of start (phones while Kamailio still answers their un-REGISTER).
  const procs: Proc[] = [];
  t.after(async () => {
    for (const p of procs.reverse()) await stopGroup(p.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const d = await startDaemon(t, o.daemonArgs ?? []);
  const [sipPort, sipA, sipB] = await freeSipPorts(3) as [number, number, number];

  // Kamailio, foreground, runtime files in the temp dir.
  const runDir = path.join(tmp, 'run');
  fs.mkdirSync(runDir);
  const cfg = path.join(tmp, 'kamailio.cfg');
  // Twice: a value of kamailioVars may itself use {{SIP_PORT}} or {{NG_PORT}} (e.g. an extra listen).
  const kamVars = { ...o.kamailioVars, SIP_PORT: sipPort, NG_PORT: d.ngPort };
  fs.writeFileSync(cfg, fill(fill(fs.readFileSync(path.join(o.fixtures, 'kamailio.cfg'), 'utf8'), kamVars), kamVars));
  const kam = run(kamailioBin, ['-DD', '-E', '-f', cfg, '-Y', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-m', '32', '-M', '8', '-w', tmp]);
  procs.push(kam);
  await waitSipReady(sipPort, 10_000).catch((e: Error) => { throw new Error(`${e.message}\n${kam.out()}`); });

  const specs = o.phones ?? [{ user: 'alice', freq: 440 }, { user: 'bob', freq: 880 }];
  const rtpBase = 50000 + 2 * Math.floor(Math.random() * 4000);
  const phones = await Promise.all(specs.map(async (p, i) => {
    const sip = i === 0 ? sipA : sipB;
    const dir = path.join(tmp, p.user), rec = path.join(dir, 'rec');
    fs.mkdirSync(rec, { recursive: true });
    const tone = path.join(dir, 'tone.wav');
    fs.writeFileSync(tone, toneWav(p.freq, 30));
    // baresip also listens on TCP at its SIP port and TLS at SIP port + 1: keep clear of those.
    let ctrlPort = await freeTcpPort();
    for (let k = 0; k < 20 && [sipA, sipA + 1, sipB, sipB + 1].includes(ctrlPort); k++) ctrlPort = await freeTcpPort();
    const host = p.netns?.nsAddr ?? '127.0.0.1', proxyHost = p.netns?.hostAddr ?? '127.0.0.1';
    fs.writeFileSync(path.join(dir, 'config'), fill(fs.readFileSync(path.join(o.fixtures, 'config'), 'utf8'), {
      ...p.vars, ADDR: host, SIP_PORT: sip, TONE: tone, REC_DIR: rec, RTP_MIN: rtpBase + 100 * i, RTP_MAX: rtpBase + 100 * i + 99, CTRL_PORT: ctrlPort,
    }));
    fs.writeFileSync(path.join(dir, 'accounts'), fill(fs.readFileSync(path.join(o.fixtures, 'accounts'), 'utf8'), { ...p.vars, USER: p.user, PROXY_HOST: proxyHost, PROXY_PORT: sipPort }));
    // In a namespace: `ip netns exec` enters it and execs baresip (same PID, same process group).
    const argv = [...(p.netns?.exec ?? []), baresipBin, '-f', dir, '-t', '55'];
    const proc = run(argv[0]!, argv.slice(1), { cwd: dir });
    procs.push(proc);
    const ctrl = await Ctrl.connect(t, ctrlPort, proc, 10_000, host);
    return { ...p, host, proxyHost, sip, dir, rec, proc, ctrl };
  }));
  const [a, b] = phones as [Phone, Phone];
  const diag = (): string => [`--- kamailio\n${kam.out()}`, `--- ${a.user}\n${a.proc.out()}`, `--- ${b.user}\n${b.proc.out()}`,
    `--- rtprelay\n${d.stderr().slice(-20000)}`].join('\n');

  for (const p of phones) assert.ok(await p.ctrl.waitRegistered(10_000), `${p.user} registered\n${diag()}`);

  // rtprelay logs `error` only when a person must act: a clean call through Kamailio never should.
  t.after(() => {
    const errors = d.logs.filter((l) => typeof l.level === 'number' && l.level >= 50);
    assert.deepEqual(errors, [], 'rtprelay logged no errors');
  });
  return { d, sipPort, a, b, diag, kam };
}

export interface Phone extends PhoneSpec { host: string; proxyHost: string; sip: number; dir: string; rec: string; proc: Proc; ctrl: Ctrl }
export type SipSetup = Awaited<ReturnType<typeof startSipSetup>>;
type Daemon = SipSetup['d'];

/** RTP packets rtprelay received per tag (from-tag/to-tag) of the one call it holds. */
export async function packetsPerTag(d: Daemon, callId: string): Promise<Record<string, number>> {
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
export async function waitPackets(d: Daemon, callId: string, min: Record<string, number> | number, ms: number): Promise<Record<string, number>> {
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

export async function onlyCall(d: Daemon): Promise<string> {
  const list = await d.ng.cmd({ command: 'list' }) as { result: string; calls: string[] };
  assert.equal(list.result, 'ok');
  assert.equal(list.calls.length, 1, `one call in rtprelay: ${JSON.stringify(list)}`);
  return list.calls[0]!;
}

/** Polls `list` until rtprelay holds no call (at most 3 s). */
export async function waitNoCalls(d: Daemon): Promise<string[]> {
  let calls: string[] = ['?'];
  for (let i = 0; i < 30 && calls.length; i++) {
    calls = (await d.ng.cmd({ command: 'list' }) as { calls: string[] }).calls;
    if (calls.length) await sleep(100);
  }
  return calls;
}

/** Asserts `p` recorded (sndfile, "-dec.wav") `other`'s tone, not its own and not silence. */
export function assertHearsTone(t: TestContext, p: Phone, other: Phone, diag: () => string): void {
  const files = fs.readdirSync(p.rec).filter((f) => f.endsWith('dec.wav'));
  assert.equal(files.length, 1, `${p.user} recorded one decoded stream: ${fs.readdirSync(p.rec).join(', ')}\n${diag()}`);
  const wav = readWav(fs.readFileSync(path.join(p.rec, files[0]!)));
  assert.equal(wav.rate, RATE);
  const x = wav.samples;
  assert.ok(x.length >= RATE, `${p.user} recorded at least a second (${x.length} samples)\n${diag()}`);
  // Skip the first half second (jitter buffer start-up, comfort silence).
  const body = x.subarray(Math.min(RATE / 2, x.length >> 2));
  const level = rms(body), hear = goertzel(body, other.freq, RATE), own = goertzel(body, p.freq, RATE);
  t.diagnostic(`${p.user}: ${x.length} samples, rms ${level.toFixed(3)}, ${other.freq} Hz ${hear.toExponential(2)}, ${p.freq} Hz ${own.toExponential(2)}`);
  assert.ok(level > 0.05, `${p.user} hears more than silence (rms ${level})`);
  assert.ok(hear > 20 * own, `${p.user} hears ${other.freq} Hz (the other phone), not ${p.freq} Hz: ${hear} vs ${own}`);
  // A pure tone of amplitude A has normalised Goertzel power A²/4; most of the signal is that tone.
  assert.ok(hear > 0.5 * (level * level) / 2, `${other.freq} Hz dominates what ${p.user} hears (${hear} vs rms² ${level * level})`);
}
