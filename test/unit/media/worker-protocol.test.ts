// The media worker's tape (media/worker-protocol.ts): every message reads back as it was written,
// in order; the frequent ones travel flat (numbers and strings, no objects), the rest as objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFromWorker, readToWorker, writeFromWorker, writeToWorker, type FromWorker, type Tape, type ToWorker } from '../../../media/worker-protocol.js';
import type { SocketPlan } from '../../../media/plane.js';

/** A plain plan as the session writes one (media/forwardPlans), and a retiring one (optional fields absent). */
const plain: SocketPlan = {
  forward: true, asymmetric: false, strictSource: true, mediaHandover: false, crypto: null, rtcpFeedback: true, generateRtcp: false,
  clockRates: [0, 8000, 101, 8000, 111, 48000], id: 7, kind: 'rtp', remote: { address: '203.0.113.5', port: 40000 }, sink: 11,
  payloadTypes: [0, 101, 111], rtcpMux: true, rtcpSink: 12, ice: null, bundle: null,
};
const retiring: SocketPlan = {
  id: 8, kind: 'rtcp', remote: null, sink: null, forward: false, asymmetric: true, strictSource: false,
  mediaHandover: true, payloadTypes: [], rtcpMux: false, rtcpSink: null,
};
const noFeedback: SocketPlan = { ...retiring, id: 9, rtcpFeedback: false, generateRtcp: true, clockRates: null, remote: { address: '::1', port: 9 } };
const srtp: SocketPlan = {
  ...plain, id: 13, crypto: { sdes: { rx: { suite: 'AES_CM_128_HMAC_SHA1_80', key: 'a', salt: 'b' }, tx: { suite: 'AES_CM_128_HMAC_SHA1_80', key: 'c', salt: 'd' } }, dtls: null },
};

/** Whether a tape holds any object: flat means numbers, strings and nulls only. */
const objects = (t: Tape): unknown[] => t.filter((x) => typeof x === 'object' && x !== null);

/**
 * Writes `msgs` on one tape, reads them back from a structured clone of it (what postMessage
 * delivers) and checks they come back as written, in order; returns how many objects the tape held.
 */
function roundTrip<M>(msgs: M[], write: (t: Tape, m: M) => void, read: (t: Tape, each: (m: M) => void) => void): number {
  const tape: Tape = [];
  for (const m of msgs) write(tape, m);
  const got: M[] = [];
  read(structuredClone(tape), (m) => got.push(m));
  assert.deepStrictEqual(got, msgs);
  return objects(tape).length;
}

test('messages to the worker read back as written, in order; opens, closes and plain plans flat', () => {
  const msgs: ToWorker[] = [
    { op: 'open', req: 1, address: '127.0.0.1' },
    { op: 'install', plans: [plain, retiring, noFeedback] },
    { op: 'close', ids: [3, 4, 5] },
    { op: 'open', req: 2, address: '::1' },
  ];
  assert.equal(roundTrip(msgs, writeToWorker, readToWorker), 0, 'no object on the tape');
});

test('a plan with SRTP, and the rare messages, go as their objects, in their place', () => {
  const msgs: ToWorker[] = [
    { op: 'install', plans: [plain, srtp] },
    { op: 'rec-pause', group: 'call-1' },
    { op: 'close', ids: [] },
    { op: 'shutdown', req: 9 },
  ];
  assert.equal(roundTrip(msgs, writeToWorker, readToWorker), 3, 'the SRTP plan, rec-pause and shutdown');
});

test('messages from the worker read back as written, in order; opened, state and ports flat', () => {
  const ports = [{ address: '127.0.0.1', free: 10, total: 20, parked: 3, reused: 41, parkedDrops: 2 }, { address: '::1', free: 0, total: 20 }];
  const msgs: FromWorker[] = [
    { type: 'opened', req: 4, pair: { rtp: 1, rtcp: 3, address: '127.0.0.1', port: 30000 }, slots: [{ chunk: 0, index: 5 }, { chunk: 1, index: 0 }], ports, seen: 7 },
    { type: 'event', ev: { type: 'confirmed', id: 1, remote: { address: '127.0.0.1', port: 5000 } } },
    { type: 'state', states: [{ id: 1, remote: null, confirmed: false }, { id: 3, remote: { address: '::1', port: 5001 }, confirmed: true }] },
    { type: 'ports', ports: [], seen: 12 },
    { type: 'shutdown-done', req: 2 },
  ];
  assert.equal(roundTrip(msgs, writeFromWorker, readFromWorker), 2, 'the event and shutdown-done');
});

test('a tape with an unknown code is refused, not misread', () => {
  assert.throws(() => readToWorker([99, 1], () => undefined), /unknown code 99/);
  assert.throws(() => readFromWorker([42], () => undefined), /unknown code 42/);
});
