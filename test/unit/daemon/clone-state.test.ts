// The call table's rollback snapshots (daemon/session/dialogue.ts cloneCall, cloneParticipants):
// what structuredClone gives (holes, undefined values, shared references kept), and no object
// of the original reachable from the copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cloneCall, cloneParticipants, cloneState } from '../../../daemon/session/dialogue.js';
import type { Call, Participant } from '../../../daemon/session/model.js';

/** Every object reachable from `x`. */
function objects(x: unknown, out = new Set<object>()): Set<object> {
  if (typeof x !== 'object' || x === null || out.has(x)) return out;
  out.add(x);
  for (const v of Object.values(x)) objects(v, out);
  return out;
}

function sample(): Call {
  const local = { address: '127.0.0.1', advertised: '203.0.113.1', family: 4 as const, port: 30000, rtp: 1, rtcp: 2 };
  const ice = { ufrag: 'u', pwd: 'p' };
  const remoteIce = { ufrag: 'r', pwd: 'q', lite: false, candidates: [{ foundation: 'f', component: 1 as const, priority: 1, address: '10.0.0.1', port: 5, type: 'host' as const }] };
  const media = (index: number, bundleOwner: number | null) => ({
    index, type: 'audio', protocol: 'UDP/TLS/RTP/SAVPF', remoteRtp: { address: '10.0.0.1', port: 5 }, remoteRtcp: null, local,
    direction: 'sendrecv' as const, rtcpMux: true, payloadTypes: [111, 0], rejected: false, mid: String(index), ice, foundation: null,
    localExtra: [local], remoteIce, cryptoIn: [], sdes: { rx: 'a', tx: 'b' }, bundleOwner, clockRates: [111, 48000],
    generateRtcp: undefined,
  });
  // A hole (index 1) and a null-prototype leaf, as a stored call may have.
  const medias: Participant['medias'] = [];
  medias[0] = media(1, 1);
  medias[2] = media(3, 1);
  const flags = Object.assign(Object.create(null) as Participant['flags'], { asymmetric: false, strictSource: true, mediaHandover: false, portLatching: false });
  const p = (id: number, tag: string): Participant => ({
    id, tag, viaBranch: null, label: null, createdMs: 1, interfaceName: 'default', peerId: 3 - id, medias, flags,
    sdpIn: 'v=0', sdpOut: null, originVersion: null, originUsername: null, sessionName: null,
  });
  const a = p(1, 'A'), b = { ...p(2, 'B'), medias: [media(1, null)] };
  return {
    callId: 'c', createdMs: 1, lastSignalMs: 2, answeredMs: null, participants: [a, b], nextParticipantId: 3,
    deleteAtMs: null, deleteReason: null,
    pending: { committed: [a, { ...b }], offererTag: 'A', sinceMs: 3 },
    retiring: [{ rtp: 9, rtcp: 10, atMs: 11 }],
    recording: { state: 'recording', dir: '/tmp', stem: 's', metadata: '', startedMs: 1, error: null },
  };
}

test('cloneCall gives what structuredClone gives, sharing kept, nothing of the original reachable', () => {
  const call = sample();
  const copy = cloneCall(call);
  assert.deepStrictEqual(copy, structuredClone(call));
  assert.deepStrictEqual(cloneState(call), structuredClone(call));
  const mine = objects(call);
  for (const o of objects(copy)) assert.ok(!mine.has(o), 'an object of the original is reachable from the copy');
  const [a] = copy.participants;
  assert.equal(1 in a!.medias, false, 'the hole stays a hole');
  assert.equal(Object.hasOwn(a!.medias[0]!, 'generateRtcp'), true, 'an undefined value stays a key');
  assert.equal(a!.medias[0]!.local, a!.medias[2]!.local, 'a BUNDLE member still shares its owner\'s pair');
  assert.equal(a!.medias[0]!.localExtra![0], a!.medias[0]!.local);
  assert.equal(copy.pending!.committed[0], a, 'shared between live and committed state');
});

test('cloneParticipants copies a participant list alone', () => {
  const call = sample();
  const copy = cloneParticipants(call.participants);
  assert.deepStrictEqual(copy, structuredClone(call.participants));
  const mine = objects(call.participants);
  for (const o of objects(copy)) assert.ok(!mine.has(o));
});
