// CallTable timeouts, delete-delay and max-sessions, driven by an injected clock and sweep(nowMs):
// no sockets, no sleeping. A fake media plane reports packet times as the test sets them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { CallTable, type SessionConfig } from '../../../daemon/session/call-table.js';
import { SessionError } from '../../../daemon/session/errors.js';
import type { NgDict } from '../../../control/codec.js';
import { deleteOptions, offerAnswerOptions, Params } from '../../../control/params.js';
import type { MediaPlane, OpenedPair, SocketId, SocketPlan, SocketStats } from '../../../media/plane.js';
import { NoPortsError } from '../../../media/plane.js';
import { sdp } from '../../support/media.js';

class FakePlane implements MediaPlane {
  readonly open = new Set<SocketId>();
  readonly lastPacketMs = new Map<SocketId, number>();
  private next = 1;
  constructor(private freePairs = 1000) {}
  async openPair(address: string): Promise<OpenedPair> {
    if (this.freePairs === 0) throw new NoPortsError(address);
    this.freePairs--;
    const rtp = this.next++, rtcp = this.next++;
    this.open.add(rtp).add(rtcp);
    return { rtp, rtcp, address, port: 30000 + 2 * rtp };
  }
  install(_plans: readonly SocketPlan[]): void { /* forwarding is not under test here */ }
  close(ids: readonly SocketId[]): void {
    for (const id of ids) if (this.open.delete(id) && id % 2 === 0) this.freePairs++;
  }
  stats(ids: readonly SocketId[]): SocketStats[] {
    return ids.filter((id) => this.open.has(id)).map((id) => ({
      id, localAddress: '127.0.0.1', localPort: 30000 + id, remote: null, confirmed: false, packets: 0, bytes: 0,
      errors: 0, dropped: 0, lastPacketMs: this.lastPacketMs.get(id) ?? 0, ssrc: null,
    }));
  }
  ports() { return []; }
  onEvent(): void { /* no events */ }
  async shutdown(): Promise<void> { this.open.clear(); }
}

const T0 = 1_700_000_000_000;

function setup(timeouts: Partial<SessionConfig['timeouts']> = {}, maxSessions = -1, freePairs = 1000) {
  const cfg: SessionConfig = {
    interfaces: [{ name: 'default', addresses: [{ address: '127.0.0.1', family: 4, advertised: '127.0.0.1' }] }],
    timeouts: { timeoutS: 60, silentTimeoutS: 3600, finalTimeoutS: 0, offerTimeoutS: 3600, deleteDelayS: 0, ...timeouts },
    maxSessions, sipSource: false,
  };
  const clock = { nowMs: T0 };
  const plane = new FakePlane(freePairs);
  const table = new CallTable(cfg, plane, pino({ level: 'silent' }), clock);
  const offer = (callId: string, extra: string[] = []) => table.offer(offerAnswerOptions(new Params({
    command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp({ port: 4000, extra }),
  } as NgDict), 'offer'));
  const answer = (callId: string, extra: string[] = []) => table.answer(offerAnswerOptions(new Params({
    command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp({ port: 5000, extra }),
  } as NgDict), 'answer'));
  const del = (callId: string, more: NgDict = {}) => table.delete(deleteOptions(new Params({ command: 'delete', 'call-id': callId, ...more } as NgDict)));
  const alive = (callId: string): boolean => table.list(1000).includes(callId);
  return { table, plane, clock, offer, answer, del, alive };
}

test('offer-timeout ends a call that was never answered, and closes its sockets', async () => {
  const s = setup({ offerTimeoutS: 30 });
  await s.offer('c');
  assert.equal(s.plane.open.size, 4);
  s.table.sweep(T0 + 29_999);
  assert.ok(s.alive('c'));
  s.table.sweep(T0 + 30_000);
  assert.ok(!s.alive('c'));
  assert.equal(s.plane.open.size, 0);
  assert.deepEqual(s.table.totals().callsEnded, { 'offer-timeout': 1 });
});

test('a re-sent offer restarts the offer timeout (it counts from the last signal)', async () => {
  const s = setup({ offerTimeoutS: 30 });
  await s.offer('c');
  s.clock.nowMs = T0 + 20_000;
  await s.offer('c', ['a=ptime:20']);
  s.table.sweep(T0 + 45_000);
  assert.ok(s.alive('c'));
  s.table.sweep(T0 + 50_000);
  assert.ok(!s.alive('c'));
});

test('timeout ends an answered call only after that long without RTP or RTCP', async () => {
  const s = setup({ timeoutS: 10, offerTimeoutS: 5 });
  await s.offer('c');
  s.clock.nowMs = T0 + 1000;
  await s.answer('c');
  s.table.sweep(T0 + 10_999);
  assert.ok(s.alive('c'), 'the answer counts as activity; offer-timeout no longer applies');
  const [rtp, rtcp] = [...s.plane.open];
  s.plane.lastPacketMs.set(rtp!, T0 + 8000);
  s.table.sweep(T0 + 17_999);
  assert.ok(s.alive('c'), 'RTP at 8 s keeps it until 18 s');
  s.plane.lastPacketMs.set(rtcp!, T0 + 15_000);
  s.table.sweep(T0 + 24_999);
  assert.ok(s.alive('c'), 'RTCP counts as media too');
  s.table.sweep(T0 + 25_000);
  assert.ok(!s.alive('c'));
  assert.deepEqual(s.table.totals().callsEnded, { timeout: 1 });
  assert.equal(s.plane.open.size, 0);
});

test('silent-timeout applies instead of timeout when all media is on hold', async () => {
  const s = setup({ timeoutS: 10, silentTimeoutS: 100 });
  await s.offer('held', ['a=sendonly']);
  await s.answer('held', ['a=recvonly']);
  await s.offer('talk');
  await s.answer('talk');
  s.table.sweep(T0 + 10_000);
  assert.ok(s.alive('held'));
  assert.ok(!s.alive('talk'));
  s.table.sweep(T0 + 99_999);
  assert.ok(s.alive('held'));
  s.table.sweep(T0 + 100_000);
  assert.ok(!s.alive('held'));
  assert.deepEqual(s.table.totals().callsEnded, { timeout: 1, 'silent-timeout': 1 });
});

test('final-timeout ends a call however busy it is; 0 disables a timeout', async () => {
  const s = setup({ timeoutS: 0, finalTimeoutS: 50 });
  await s.offer('c');
  await s.answer('c');
  for (const id of s.plane.open) s.plane.lastPacketMs.set(id, T0 + 49_000);
  s.table.sweep(T0 + 49_999);
  assert.ok(s.alive('c'));
  s.table.sweep(T0 + 50_000);
  assert.ok(!s.alive('c'));
  assert.deepEqual(s.table.totals().callsEnded, { 'final-timeout': 1 });
  const n = setup({ timeoutS: 0, offerTimeoutS: 0 });
  await n.offer('c');
  n.table.sweep(T0 + 10 * 365 * 86400_000);
  assert.ok(n.alive('c'), 'with every timeout 0 nothing ends the call');
});

test('delete-delay keeps a deleted call (and its ports) until it passes; 0 deletes at once', async () => {
  const s = setup({ deleteDelayS: 30, timeoutS: 5 });
  await s.offer('c');
  await s.answer('c');
  s.clock.nowMs = T0 + 1000;
  assert.equal((await s.del('c')).found, true);
  assert.equal(s.table.query({ callId: 'c', fromTag: null, toTag: null }).callId, 'c', 'still queryable');
  s.table.sweep(T0 + 30_999);
  assert.ok(s.alive('c'), 'neither delete-delay nor the media timeout has ended it');
  assert.equal(s.plane.open.size, 4, 'ports held');
  s.table.sweep(T0 + 31_000);
  assert.ok(!s.alive('c'));
  assert.equal(s.plane.open.size, 0);
  assert.deepEqual(s.table.totals().callsEnded, { delete: 1 });
  // The request's own delete-delay wins over the daemon's.
  await s.offer('d');
  await s.del('d', { 'delete-delay': 0 });
  assert.ok(!s.alive('d'));
  assert.equal(s.plane.open.size, 0);
});

test('max-sessions refuses new calls only; calls being deleted do not count', async () => {
  const s = setup({ deleteDelayS: 30 }, 1);
  await s.offer('one');
  await assert.rejects(s.offer('two'), (e) => e instanceof SessionError && e.code === 'SESSION_LIMIT');
  assert.ok(!s.alive('two'));
  assert.equal(s.plane.open.size, 4, 'the refused call opened nothing');
  await s.offer('one', ['a=ptime:30']);
  await s.answer('one');
  assert.ok(s.alive('one'), 're-offer and answer of the existing call still work');
  await s.del('one');
  await s.offer('two');
  assert.ok(s.alive('two'), 'a call in delete-delay leaves its slot free');
});

test('a failed offer (no ports) leaves no call and no sockets behind', async () => {
  const s = setup({}, -1, 3);
  await s.offer('one');
  await assert.rejects(s.offer('two'), (e) => e instanceof SessionError && e.code === 'NO_PORTS');
  assert.ok(!s.alive('two'));
  assert.equal(s.plane.open.size, 4, 'the one pair the failed offer got was closed again');
});

test('the sliced sweep checks every call once in `parts` slices, deletions and new calls included', async () => {
  const s = setup({ offerTimeoutS: 10 });
  for (let i = 0; i < 25; i++) await s.offer(`c${i}`);
  // 3 calls a slice (a tenth of 25, rounded up), in the table's order.
  for (let k = 0; k < 4; k++) s.table.sweepPart(T0 + 10_000, 10);
  assert.equal(s.table.size, 25 - 12);
  assert.ok(!s.alive('c11') && s.alive('c12'));
  await s.del('c20'); // deleted ahead of the cursor: skipped, no harm
  s.clock.nowMs = T0 + 5_000;
  await s.offer('late'); // created during the pass: checked in it, not timed out yet
  for (let k = 0; k < 5; k++) s.table.sweepPart(T0 + 10_000, 10);
  assert.deepEqual(s.table.list(100), ['late']);
  assert.equal(s.plane.open.size, 4);
  // The next pass starts over, with the table as it is then.
  s.table.sweepPart(T0 + 15_000, 10);
  assert.equal(s.table.size, 0);
  assert.equal(s.plane.open.size, 0);
  s.table.sweepPart(T0 + 16_000, 10); // an empty table: nothing to do, no endless loop
});

test('a sweep that began on an empty table (a daemon just started) still finds the calls that come later', async () => {
  const s = setup({ offerTimeoutS: 10 });
  for (let k = 0; k < 3; k++) s.table.sweepPart(T0, 10);
  await s.offer('later');
  for (let k = 0; k < 10; k++) s.table.sweepPart(T0 + 11_000, 10);
  assert.equal(s.table.size, 0, 'the unanswered call timed out');
});
