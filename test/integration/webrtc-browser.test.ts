// A real browser through rtprelay to a plain phone: headless Chromium (Debian's, driven by
// playwright-core) with a fake microphone playing 440 Hz makes a WebRTC offer (ICE, DTLS-SRTP,
// rtcp-mux, AVPF); rtprelay turns it into plain RTP/AVP for a Node "phone" that answers PCMU and
// plays 880 Hz. Checked: the phone decodes 440 Hz, the browser hears 880 Hz, and the browser's
// getStats() shows RTCP from the remote side (rtprelay's generated reports: the phone sends none).
// With bundlePolicy 'max-bundle' the browser insists on a=group:BUNDLE and one transport for all
// its m= lines in our answer (daemon/session/bundle.ts); its video then reaches the phone's video port.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { connAddress, mediaPort, rtp, udpPeer, type Peer } from '../support/media.js';
import { pcmToUlaw, ULAW_TO_PCM } from '../../media/recording/g711.js';

const CHROMIUM = '/usr/bin/chromium';

/** A 16-bit mono WAV of a sine tone (Chromium's fake microphone loops it). */
function toneWav(file: string, hz: number, seconds: number, rate = 48000): void {
  const n = rate * seconds;
  const b = Buffer.alloc(44 + n * 2);
  b.write('RIFF', 0); b.writeUInt32LE(36 + n * 2, 4); b.write('WAVE', 8);
  b.write('fmt ', 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(rate * 2, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write('data', 36); b.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + i * 2);
  writeFileSync(file, b);
}

/** Goertzel power of `hz` in `x` (sampled at `rate`), normalised by length. */
function power(x: Float64Array, hz: number, rate: number): number {
  const k = (2 * Math.PI * hz) / rate, c = 2 * Math.cos(k);
  let s1 = 0, s2 = 0;
  for (let i = 0; i < x.length; i++) { const s = x[i]! + c * s1 - s2; s2 = s1; s1 = s; }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / x.length;
}

/** The strongest of 100..2000 Hz in 10 Hz steps. */
function dominant(x: Float64Array, rate: number): number {
  let best = 0, at = 0;
  for (let hz = 100; hz <= 2000; hz += 10) { const p = power(x, hz, rate); if (p > best) { best = p; at = hz; } }
  return at;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>rtprelay webrtc</title><script>
window.pc = null;
window.makeOffer = async ({ video, bundlePolicy }) => {
  const pc = new RTCPeerConnection(bundlePolicy ? { bundlePolicy } : {});
  window.pc = pc;
  const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: !!video });
  for (const track of media.getTracks()) {
    const tr = pc.addTransceiver(track, { direction: 'sendrecv', streams: [media] });
    if (track.kind === 'audio') {
      const pcmu = RTCRtpReceiver.getCapabilities('audio').codecs.filter((c) => c.mimeType === 'audio/PCMU');
      tr.setCodecPreferences(pcmu);
    }
  }
  window.remote = new Promise((resolve) => { pc.ontrack = (ev) => { if (ev.track.kind === 'audio') resolve(ev.track); }; });
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => { pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); }; setTimeout(resolve, 5000); });
  }
  return pc.localDescription.sdp;
};
window.takeAnswer = async (sdp) => { await window.pc.setRemoteDescription({ type: 'answer', sdp }); };
window.state = () => ({ ice: window.pc.iceConnectionState, conn: window.pc.connectionState });
// The dominant frequency of what the browser plays from the remote track.
window.listen = async () => {
  const track = await window.remote;
  const stream = new MediaStream([track]);
  const el = new Audio(); el.srcObject = stream; el.muted = true; await el.play().catch(() => {});
  const ctx = new AudioContext();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(stream);
  const an = ctx.createAnalyser(); an.fftSize = 8192; an.smoothingTimeConstant = 0;
  src.connect(an);
  window.peak = () => {
    const bins = new Float32Array(an.frequencyBinCount); an.getFloatFrequencyData(bins);
    let best = -Infinity, at = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > best) { best = bins[i]; at = i; }
    return { hz: at * ctx.sampleRate / an.fftSize, db: best };
  };
};
window.rtcpStats = async () => {
  const out = [];
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'remote-inbound-rtp' || s.type === 'remote-outbound-rtp' || s.type === 'inbound-rtp' || s.type === 'outbound-rtp')
      out.push({ type: s.type, kind: s.kind, ssrc: s.ssrc, packetsReceived: s.packetsReceived, packetsSent: s.packetsSent,
        packetsLost: s.packetsLost, jitter: s.jitter, roundTripTime: s.roundTripTime, reportsSent: s.reportsSent,
        remoteTimestamp: s.remoteTimestamp, bytesReceived: s.bytesReceived });
  });
  return out;
};
</script>`;

interface Call {
  d: Daemon; page: Page; phoneRtp: Peer; relayPort: number; relayAddr: string; offer: string; answer: string;
  /** The phone's video socket, when it accepted the video. */
  phoneVideo: Peer | null;
}

interface CallOptions {
  daemonArgs?: string[];
  ng?: Record<string, unknown>;
  /** RTCPeerConnection bundlePolicy ('max-bundle': one transport, BUNDLE required in the answer). */
  bundlePolicy?: 'balanced' | 'max-bundle';
  /** The phone takes the browser's video (VP8) on a port of its own; otherwise it rejects it. */
  phoneVideo?: boolean;
}

async function setupBrowser(t: TestContext, video: boolean): Promise<{ browser: Browser; page: Page }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtprelay-webrtc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wav = path.join(dir, 'tone440.wav');
  toneWav(wav, 440, 4);
  const server = http.createServer((_req, res) => { res.setHeader('content-type', 'text/html'); res.end(PAGE); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`, '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.WEBRTC_DEBUG) console.log('[page]', m.text()); });
  await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  void video;
  return { browser, page };
}

/** Browser offer → rtprelay (to plain RTP/AVP) → phone answer → rtprelay → browser answer. */
async function call(t: TestContext, video: boolean, ngExtra: CallOptions): Promise<Call> {
  // A range of its own below the ephemeral ports (the browser's and the test peers' sockets).
  const min = 12000 + 2 * Math.floor(Math.random() * 3500);
  const d = await startDaemon(t, [`--port-min=${min}`, `--port-max=${min + 99}`, ...(ngExtra.daemonArgs ?? [])]);
  const { page } = await setupBrowser(t, video);
  const offerSdp = await page.evaluate((o) => (window as unknown as { makeOffer(o: unknown): Promise<string> }).makeOffer(o),
    { video, bundlePolicy: ngExtra.bundlePolicy ?? null });
  assert.match(offerSdp, /UDP\/TLS\/RTP\/SAVPF/);
  const callId = `webrtc-${video ? 'av' : 'a'}-${ngExtra.bundlePolicy ?? 'default'}-${process.pid}`;
  const offer = await d.ng.cmd({
    command: 'offer', 'call-id': callId, 'from-tag': 'browser', sdp: offerSdp,
    'transport-protocol': 'RTP/AVP', ICE: 'remove', 'rtcp-mux': ['demux'], ...(ngExtra.ng as object ?? {}),
  });
  assert.equal(offer.result, 'ok', JSON.stringify(offer));
  const toPhone = String(offer.sdp);
  assert.doesNotMatch(toPhone, /a=(candidate|ice-ufrag|fingerprint|crypto)/);
  assert.match(toPhone, /m=audio \d+ RTP\/AVP 0\b/);
  const phoneRtp = await udpPeer(t);
  const lines = ['v=0', 'o=phone 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${phoneRtp.port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv'];
  let phoneVideo: Peer | null = null;
  if (/^m=video/m.test(toPhone) && ngExtra.phoneVideo) {
    phoneVideo = await udpPeer(t);
    const vp8 = /^a=rtpmap:(\d+) VP8\/90000/m.exec(toPhone)![1]!;
    lines.push(`m=video ${phoneVideo.port} RTP/AVP ${vp8}`, `a=rtpmap:${vp8} VP8/90000`, 'a=sendrecv');
  } else if (/^m=video/m.test(toPhone)) lines.push('m=video 0 RTP/AVP ' + /^m=video \d+ \S+ (\S+)/m.exec(toPhone)![1]);
  const answer = await d.ng.cmd({
    command: 'answer', 'call-id': callId, 'from-tag': 'browser', 'to-tag': 'phone', sdp: lines.join('\r\n') + '\r\n',
    ...(ngExtra.ng as object ?? {}),
  });
  assert.equal(answer.result, 'ok', JSON.stringify(answer));
  const toBrowser = String(answer.sdp);
  assert.match(toBrowser, /m=audio \d+ UDP\/TLS\/RTP\/SAVPF 0\b/);
  assert.match(toBrowser, /a=ice-ufrag:/);
  assert.match(toBrowser, /a=fingerprint:sha-256 /);
  assert.match(toBrowser, /a=setup:(active|passive)/);
  assert.match(toBrowser, /a=rtcp-mux/);
  if (process.env.WEBRTC_DEBUG) console.log(offerSdp, toPhone, toBrowser);
  await page.evaluate((s) => (window as unknown as { takeAnswer(s: string): Promise<void> }).takeAnswer(s), toBrowser);
  return { d, page, phoneRtp, relayPort: mediaPort(toPhone), relayAddr: connAddress(toPhone), offer: toPhone, answer: toBrowser, phoneVideo };
}

/** The phone: 880 Hz μ-law every 20 ms; collects the μ-law it receives (decoded). */
function runPhone(c: Call): { stop(): void; received: () => Float64Array; packets: () => number } {
  let seq = 1, phase = 0;
  const ssrc = 0x0fedcba9;
  const samples: number[] = [];
  let packets = 0;
  c.phoneRtp.sock.on('message', (m) => {
    if (m.length < 12 || m[1]! >= 192 && m[1]! <= 223) return;
    if ((m[1]! & 0x7f) !== 0) return;
    packets++;
    const cc = m[0]! & 0x0f;
    for (let i = 12 + cc * 4; i < m.length; i++) samples.push(ULAW_TO_PCM[m[i]!]!);
  });
  const timer = setInterval(() => {
    const payload = Buffer.alloc(160);
    for (let i = 0; i < 160; i++, phase++) payload[i] = pcmToUlaw(Math.round(10000 * Math.sin((2 * Math.PI * 880 * phase) / 8000)));
    void c.phoneRtp.send(rtp({ seq: seq++, ts: (seq - 1) * 160, ssrc, payload }), c.relayPort, c.relayAddr);
  }, 20);
  return {
    stop: () => clearInterval(timer),
    received: () => Float64Array.from(samples.slice(-8000 * 2)),
    packets: () => packets,
  };
}

async function until<T>(page: Page, fn: () => Promise<T | null>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await page.evaluate(() => (window as unknown as { state(): unknown }).state()))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function checkAudio(t: TestContext, c: Call): Promise<void> {
  const ph = runPhone(c);
  t.after(() => ph.stop());
  await until(c.page, async () => {
    const s = await c.page.evaluate(() => (window as unknown as { state(): { ice: string; conn: string } }).state());
    return s.conn === 'connected' ? s : null;
  }, 15_000, 'the browser to connect (ICE + DTLS)');
  // Browser → phone: decrypted PCMU with the browser's 440 Hz microphone.
  await until(c.page, async () => (ph.packets() >= 100 ? true : null), 10_000, 'PCMU at the phone');
  const got = ph.received();
  const f = dominant(got, 8000);
  assert.ok(Math.abs(f - 440) <= 10, `the phone hears the browser's 440 Hz tone (dominant ${f} Hz)`);
  assert.ok(power(got, 440, 8000) > 100 * power(got, 880, 8000), 'and not its own 880 Hz');
  // Phone → browser: the browser decodes and plays 880 Hz.
  await c.page.evaluate(() => (window as unknown as { listen(): Promise<void> }).listen());
  const peak = await until(c.page, async () => {
    const p = await c.page.evaluate(() => (window as unknown as { peak(): { hz: number; db: number } }).peak());
    return Math.abs(p.hz - 880) <= 12 && p.db > -80 ? p : null;
  }, 10_000, 'the browser to play 880 Hz');
  assert.ok(Math.abs(peak.hz - 880) <= 12, `browser hears ${peak.hz} Hz`);
  // RTCP from the remote side: rtprelay's generated SR (remote-outbound-rtp) and RR block (remote-inbound-rtp).
  const stats = await until(c.page, async () => {
    const s = await c.page.evaluate(() => (window as unknown as { rtcpStats(): Promise<Record<string, unknown>[]> }).rtcpStats());
    const audio = s.filter((x) => x.kind === 'audio');
    return audio.some((x) => x.type === 'remote-inbound-rtp') && audio.some((x) => x.type === 'remote-outbound-rtp') ? audio : null;
  }, 15_000, 'remote-inbound-rtp and remote-outbound-rtp in getStats()');
  if (process.env.WEBRTC_DEBUG) console.log({ f, peak, stats });
  const ri = stats.find((x) => x.type === 'remote-inbound-rtp')!;
  const ro = stats.find((x) => x.type === 'remote-outbound-rtp')!;
  const inbound = stats.find((x) => x.type === 'inbound-rtp')!;
  assert.equal(ro.ssrc, 0x0fedcba9, 'the SR is about the phone\'s stream');
  assert.equal(ri.packetsLost, 0, JSON.stringify(ri));
  assert.ok(typeof ro.packetsSent === 'number' && (ro.packetsSent as number) > 0 && (ro.packetsSent as number) <= ph.packets() + 1000,
    JSON.stringify(ro));
  assert.ok((inbound.packetsReceived as number) > 0);
  // Our SR's NTP timestamp is wall-clock time (Chromium shows it in Unix ms).
  assert.ok(Math.abs((ro.remoteTimestamp as number) - Date.now()) < 60_000, `SR time ${String(ro.remoteTimestamp)}`);
  ph.stop();
}

test('Chromium ↔ rtprelay ↔ plain RTP/AVP phone: tones both ways, RTCP in the browser\'s stats', { timeout: 60_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('Debian chromium is not installed at /usr/bin/chromium');
  // No generate-RTCP flag: towards a browser it is on by default (webrtc.ts takeSecurity).
  const c = await call(t, false, {});
  await checkAudio(t, c);
});

test('Chromium ↔ rtprelay in a media worker: same call, media plane off the main thread', { timeout: 60_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('Debian chromium is not installed at /usr/bin/chromium');
  const c = await call(t, false, { daemonArgs: ['--media-workers=2'], ng: { 'generate RTCP': 'on' } });
  await checkAudio(t, c);
});

test('Chromium audio+video (BUNDLE offer) to an audio-only phone: video rejected, the call establishes and audio flows', { timeout: 60_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('Debian chromium is not installed at /usr/bin/chromium');
  const c = await call(t, true, { ng: { flags: ['generate-RTCP'] } });
  assert.match(c.offer, /^m=video \d+ RTP\/AVP /m);
  assert.match(c.answer, /^m=video 0 /m);
  await checkAudio(t, c);
});

/** The m= line ports and a=group lines of an SDP. */
function transport(sdp: string): { ports: number[]; groups: string[] } {
  return {
    ports: [...sdp.matchAll(/^m=\S+ (\d+) /gm)].map((m) => Number(m[1])),
    groups: [...sdp.matchAll(/^a=group:(.*?)\r?$/gm)].map((m) => m[1]!),
  };
}

test('Chromium with bundlePolicy max-bundle, audio only: BUNDLE in our answer, tones both ways', { timeout: 60_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('Debian chromium is not installed at /usr/bin/chromium');
  const c = await call(t, false, { bundlePolicy: 'max-bundle' });
  assert.doesNotMatch(c.offer, /a=group/, 'the phone gets no BUNDLE');
  assert.deepEqual(transport(c.answer).groups, ['BUNDLE 0']);
  await checkAudio(t, c);
});

test('Chromium with bundlePolicy max-bundle, audio+video to a video phone: one transport, audio both ways, video at the phone\'s video port', { timeout: 60_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('Debian chromium is not installed at /usr/bin/chromium');
  const c = await call(t, true, { bundlePolicy: 'max-bundle', phoneVideo: true });
  // Towards the phone: two m= lines, two ports, no group. Towards the browser: one port, the group.
  const toPhone = transport(c.offer), toBrowser = transport(c.answer);
  assert.equal(toPhone.ports.length, 2);
  assert.notEqual(toPhone.ports[0], toPhone.ports[1]);
  assert.deepEqual(toPhone.groups, []);
  assert.equal(toBrowser.ports.length, 2);
  assert.equal(toBrowser.ports[0], toBrowser.ports[1], 'both m= lines on the bundle port');
  assert.match(toBrowser.groups[0] ?? '', /^BUNDLE \S+ \S+$/);
  assert.match(c.answer, /^m=video \d+ UDP\/TLS\/RTP\/SAVPF \d+/m);
  const vp8 = Number(/^m=video \d+ \S+ (\d+)/m.exec(c.offer)![1]);
  const video: number[] = [];
  c.phoneVideo!.sock.on('message', (m) => { if (m.length >= 12 && !(m[1]! >= 192 && m[1]! <= 223)) video.push(m[1]! & 0x7f); });
  await checkAudio(t, c);
  await until(c.page, async () => (video.filter((pt) => pt === vp8).length >= 20 ? true : null), 10_000, 'VP8 at the phone\'s video port');
  assert.ok(video.every((pt) => pt !== 0), 'no audio at the video port');
});
