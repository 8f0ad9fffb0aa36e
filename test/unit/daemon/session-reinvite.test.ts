// CallTable re-offer transactions with an injected clock and a fake plane: offer-timeout on a
// pending re-offer rolls back (call kept), commit retires the replaced legs after delete-delay,
// a rollback closes exactly the legs the re-offer opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { CallTable, type SessionConfig } from '../../../daemon/session/call-table.js';
import type { NgDict } from '../../../control/codec.js';
import { deleteOptions, offerAnswerOptions, Params } from '../../../control/params.js';
import type { MediaPlane, OpenedPair, SocketId, SocketPlan, SocketStats } from '../../../media/plane.js';
import { sdp } from '../../support/media.js';

class FakePlane implements MediaPlane {
  readonly open = new Set<SocketId>();
  readonly plans = new Map<SocketId, SocketPlan>();
  private next = 1;
  async openPair(address: string): Promise<OpenedPair> {
    const rtp = this.next++, rtcp = this.next++;
    this.open.add(rtp).add(rtcp);
    return { rtp, rtcp, address, port: 30000 + 2 * rtp };
  }
  install(plans: readonly SocketPlan[]): void { for (const p of plans) if (this.open.has(p.id)) this.plans.set(p.id, p); }
  close(ids: readonly SocketId[]): void { for (const id of ids) { this.open.delete(id); this.plans.delete(id); } }
  stats(ids: readonly SocketId[]): SocketStats[] {
    return ids.filter((id) => this.open.has(id)).map((id) => ({
      id, localAddress: '127.0.0.1', localPort: 30000 + id, remote: null, confirmed: false, packets: 0, bytes: 0,
      errors: 0, dropped: 0, lastPacketMs: 0, ssrc: null,
    }));
  }
  ports() { return []; }
  onEvent(): void { /* none */ }
  async shutdown(): Promise<void> { this.open.clear(); }
}

const T0 = 1_700_000_000_000;

function setup(timeouts: Partial<SessionConfig['timeouts']> = {}) {
  const cfg: SessionConfig = {
    interfaces: [{ name: 'default', addresses: [{ address: '127.0.0.1', family: 4, advertised: '127.0.0.1' }] }],
    timeouts: { timeoutS: 0, silentTimeoutS: 0, finalTimeoutS: 0, offerTimeoutS: 30, deleteDelayS: 0, ...timeouts },
    maxSessions: -1, sipSource: false,
  };
  const clock = { nowMs: T0 };
  const plane = new FakePlane();
  const table = new CallTable(cfg, plane, pino({ level: 'silent' }), clock);
  const cmd = (d: NgDict) => new Params({ 'call-id': 'c', ...d } as NgDict);
  const offer = (from: string, to: string | null, port: number) => table.offer(offerAnswerOptions(cmd({
    command: 'offer', 'from-tag': from, ...(to ? { 'to-tag': to } : {}), sdp: sdp({ port, origin: `o${port}` }),
  }), 'offer'));
  const answer = (from: string, to: string, port: number) => table.answer(offerAnswerOptions(cmd({
    command: 'answer', 'from-tag': from, 'to-tag': to, sdp: sdp({ port, origin: `o${port}` }),
  }), 'answer'));
  const del = (more: NgDict = {}) => table.delete(deleteOptions(cmd({ command: 'delete', 'from-tag': 'A', 'to-tag': 'B', ...more })));
  return { table, plane, clock, offer, answer, del };
}

test('offer-timeout on a pending re-offer rolls back to the committed state; the call lives on', async () => {
  const s = setup({ offerTimeoutS: 30 });
  await s.offer('A', null, 4000);
  await s.answer('A', 'B', 5000);
  const committed = new Set(s.plane.open);
  await s.offer('A', 'B', 4100);
  const pendingOnly = [...s.plane.open].filter((id) => !committed.has(id));
  assert.equal(pendingOnly.length, 2, 'the mover got a new pair towards B');
  assert.ok([...committed].every((id) => s.plane.open.has(id)), 'the committed legs stay open');
  s.table.sweep(T0 + 29_000);
  assert.ok(s.table.query({ callId: 'c', fromTag: null, toTag: null }).pending);
  s.table.sweep(T0 + 30_000);
  const snap = s.table.query({ callId: 'c', fromTag: null, toTag: null });
  assert.equal(snap.pending, null);
  assert.deepEqual(new Set(s.plane.open), committed, 'exactly the pending legs were released');
  assert.equal(snap.participants.find((p) => p.tag === 'A')!.medias[0]!.streams[0]!.advertised!.port, 4000, 'A is back at its committed address');
  assert.equal(s.table.size, 1);
});

test('a committed re-offer retires the replaced legs: they stop at once and close after delete-delay', async () => {
  const s = setup({ deleteDelayS: 10 });
  await s.offer('A', null, 4000);
  await s.answer('A', 'B', 5000);
  const committed = new Set(s.plane.open);
  await s.offer('A', 'B', 4100);
  await s.answer('A', 'B', 5000);
  // The fake plane numbers RTP sockets odd (port 30000 + 2 id) and RTCP sockets even (the next port).
  const portOf = (id: number): number => (id % 2 === 1 ? 30000 + 2 * id : 30000 + 2 * (id - 1) + 1);
  const live = new Set(s.table.query({ callId: 'c', fromTag: null, toTag: null })
    .participants.flatMap((p) => p.medias.flatMap((m) => m.streams.map((st) => st.local?.port))));
  const replaced = [...committed].filter((id) => !live.has(portOf(id)));
  assert.equal(replaced.length, 2);
  for (const id of replaced) {
    assert.ok(s.plane.open.has(id), 'still open during delete-delay');
    assert.equal(s.plane.plans.get(id)!.forward, false, 'but relays nothing');
  }
  s.table.sweep(T0 + 9_000);
  assert.ok(replaced.every((id) => s.plane.open.has(id)));
  s.table.sweep(T0 + 10_000);
  assert.ok(replaced.every((id) => !s.plane.open.has(id)), 'closed after delete-delay');
  assert.equal(s.table.size, 1);
});

test('an unanswered initial offer still ends the call on offer-timeout', async () => {
  const s = setup({ offerTimeoutS: 30 });
  await s.offer('A', null, 4000);
  s.table.sweep(T0 + 30_000);
  assert.equal(s.table.size, 0);
  assert.equal(s.plane.open.size, 0);
});

test('a re-offer while one is pending keeps the first committed state; one delete undoes both', async () => {
  const s = setup();
  await s.offer('A', null, 4000);
  await s.answer('A', 'B', 5000);
  const committed = new Set(s.plane.open);
  await s.offer('A', 'B', 4100);
  await s.offer('A', 'B', 4200);
  const r = await s.del();
  assert.ok(r.found && r.rolledBack);
  assert.deepEqual(new Set(s.plane.open), committed);
  const r2 = await s.del();
  assert.ok(r2.found && !r2.rolledBack);
  assert.equal(s.table.size, 0);
  assert.equal(s.plane.open.size, 0, 'no socket leaks');
});
