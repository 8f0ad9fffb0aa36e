// A BUNDLE socket (RFC 8843) in the media plane, plans by hand, real UDP on 127.0.0.1: one
// SRTP socket facing a browser carries audio and video; what arrives is routed to the plain audio
// or video socket by payload type (RTP) and SSRC (RTCP), and both plain streams leave towards
// the browser from that one socket, each encrypted under its own SSRC. In-process and in a media
// worker (the plan's `bundle` crosses to the worker thread).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LocalMediaPlane } from '../../media/relay.js';
import { createSrtpContext } from '../../media/srtp/context.js';
import type { MediaPlane, SocketPlan } from '../../media/plane.js';
import { udpPeer, rtp, type Peer } from '../support/media.js';

const SUITE = 'AES_CM_128_HMAC_SHA1_80';

function plan(id: number, kind: 'rtp' | 'rtcp', remote: Peer, sink: number | null): SocketPlan {
  return {
    id, kind, remote: { address: remote.address, port: remote.port }, sink, forward: true,
    asymmetric: false, strictSource: false, mediaHandover: false, payloadTypes: [], rtcpMux: false, rtcpSink: null,
  };
}

function keys(): { suite: string; key: string; salt: string; k: Buffer; s: Buffer } {
  const k = randomBytes(16), s = randomBytes(14);
  return { suite: SUITE, key: k.toString('base64'), salt: s.toString('base64'), k, s };
}

/** RTCP RR from `ssrc` with no report blocks, or with one about `about`. */
function rr(ssrc: number, about?: number): Buffer {
  const b = Buffer.alloc(about === undefined ? 8 : 32);
  b[0] = about === undefined ? 0x80 : 0x81; b[1] = 201; b.writeUInt16BE(b.length / 4 - 1, 2); b.writeUInt32BE(ssrc, 4);
  if (about !== undefined) b.writeUInt32BE(about, 8);
  return b;
}

/** PLI (RFC 4585 6.3.1) from `sender` about `media`. */
function pli(sender: number, media: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0x81; b[1] = 206; b.writeUInt16BE(2, 2); b.writeUInt32BE(sender, 4); b.writeUInt32BE(media, 8);
  return b;
}

async function bundleRelays(t: TestContext, plane: MediaPlane): Promise<void> {
  const pw = await plane.openPair('127.0.0.1', 'bundle-call'); // faces the browser: audio and video
  const pa = await plane.openPair('127.0.0.1', 'bundle-call'); // faces the phone's audio
  const pv = await plane.openPair('127.0.0.1', 'bundle-call'); // faces the phone's video
  const w = await udpPeer(t), a = await udpPeer(t), aRtcp = await udpPeer(t), v = await udpPeer(t), vRtcp = await udpPeer(t);
  const fromW = keys(), toW = keys();
  plane.install([
    {
      ...plan(pw.rtp, 'rtp', w, pa.rtp), rtcpMux: true, rtcpSink: pa.rtcp, payloadTypes: [111, 0, 96, 97],
      crypto: { sdes: { rx: fromW, tx: toW }, dtls: null }, clockRates: [111, 48000, 0, 8000, 96, 90000, 97, 90000],
      bundle: [
        { payloadTypes: [111, 0], ssrcs: [0xa0], sink: pa.rtp, rtcpSink: pa.rtcp, forward: true },
        { payloadTypes: [96, 97], ssrcs: [], sink: pv.rtp, rtcpSink: pv.rtcp, forward: true },
      ],
    },
    plan(pa.rtp, 'rtp', a, pw.rtp), plan(pa.rtcp, 'rtcp', aRtcp, pw.rtp),
    plan(pv.rtp, 'rtp', v, pw.rtp), plan(pv.rtcp, 'rtcp', vRtcp, pw.rtp),
  ]);
  const browserTx = createSrtpContext(SUITE, fromW.k, fromW.s);
  const browserRx = createSrtpContext(SUITE, toW.k, toW.s);

  // Browser → phone: by payload type, from one socket to two.
  for (let seq = 1; seq <= 3; seq++) {
    const audio = rtp({ seq, ts: seq * 960, pt: 111, ssrc: 0xa0 });
    const video = rtp({ seq, ts: seq * 3000, pt: 96, ssrc: 0xb0, payload: Buffer.alloc(600, 7) });
    await w.send(browserTx.protectRtp(audio)!, pw.port);
    await w.send(browserTx.protectRtp(video)!, pw.port);
    assert.deepEqual((await a.recv())?.msg, audio, `audio ${seq} at the phone's audio port`);
    assert.deepEqual((await v.recv())?.msg, video, `video ${seq} at the phone's video port`);
  }
  // rtx (PT 97) belongs to the video too.
  const rtx = rtp({ seq: 9, pt: 97, ssrc: 0xb9 });
  await w.send(browserTx.protectRtp(rtx)!, pw.port);
  assert.deepEqual((await v.recv())?.msg, rtx);
  assert.equal(await a.recv(200), null, 'nothing of the video reached the audio port');

  // Phone → browser: both streams leave the one bundle socket, encrypted per SSRC.
  for (let seq = 1; seq <= 3; seq++) {
    const audio = rtp({ seq, ts: seq * 160, pt: 0, ssrc: 0xa1 });
    const video = rtp({ seq, ts: seq * 3000, pt: 96, ssrc: 0xb1, payload: Buffer.alloc(500, 3) });
    await a.send(audio, pa.port);
    const gotA = await w.recv();
    assert.equal(gotA?.from.port, pw.port, 'audio from the bundle port');
    assert.deepEqual(browserRx.unprotectRtp(gotA!.msg), audio);
    await v.send(video, pv.port);
    const gotV = await w.recv();
    assert.equal(gotV?.from.port, pw.port, 'video from the same bundle port');
    assert.deepEqual(browserRx.unprotectRtp(gotV!.msg), video);
  }

  // Browser RTCP, muxed on the bundle socket, goes by SSRC.
  const cases: [string, Buffer, Peer][] = [
    ['an RR from the video sender (SSRC seen in its RTP)', rr(0xb0), vRtcp],
    ['an RR from the audio sender (SSRC announced)', rr(0xa0), aRtcp],
    ['a PLI from an unknown sender about the phone\'s video (SSRC seen going out)', pli(1, 0xb1), vRtcp],
    ['an RR from an unknown sender about the phone\'s audio', rr(2, 0xa1), aRtcp],
    ['RTCP nobody can place: the first media', rr(3), aRtcp],
  ];
  for (const [what, pkt, at] of cases) {
    await w.send(browserTx.protectRtcp(pkt)!, pw.port);
    const got = await at.recv();
    assert.deepEqual(got?.msg, pkt, what);
  }
  assert.equal(await aRtcp.recv(200), null);
  assert.equal(await vRtcp.recv(200), null);

  // The phone's RTCP reaches the browser through the bundle socket too.
  await vRtcp.send(rr(0xb1, 0xb0), pv.port + 1);
  const got = await w.recv();
  assert.equal(got?.from.port, pw.port);
  assert.deepEqual(browserRx.unprotectRtcp(got!.msg), rr(0xb1, 0xb0));

  // The bundle socket's figures are the first media's stream (one RTP stream per pair).
  const [st] = plane.stats([pw.rtp]);
  assert.equal(st?.quality?.received, 3);
}

test('BUNDLE socket: routes by payload type and SSRC both ways (in-process plane)', async (t) => {
  const base = 47000 + 2 * Math.floor(Math.random() * 1000);
  const plane = new LocalMediaPlane({ min: base, max: base + 9 }, { nowMs: Date.now() }, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  await bundleRelays(t, plane);
});

test('BUNDLE socket in a media worker', async (t) => {
  const { WorkerMediaPlane } = await import('../../media/worker-plane.js');
  const base = 49100 + 2 * Math.floor(Math.random() * 400);
  const plane = await WorkerMediaPlane.start({ min: base, max: base + 9 }, 1, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  await bundleRelays(t, plane);
});
