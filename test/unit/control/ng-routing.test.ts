// NgServer with a Forwarder (call threads): which commands leave for a call thread and under
// which call-id, which stay; counting of the routed replies; and threadOf's spread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { NgServer, type Forwarder, type RoutedReply } from '../../../control/ng-server.js';
import type { CommandContext } from '../../../control/commands/context.js';
import { decodeBencodeDict, encodeBencode, type NgValue } from '../../../control/codec.js';
import { exactBytes, threadOf } from '../../../daemon/call-threads.js';

function setUp(reply: Partial<RoutedReply> = {}) {
  const log = pino({ level: 'silent' });
  const ctx = { log, stats: { byCommand: new Map(), byProxy: new Map() }, startedMs: 0, nowMs: () => 0, ports: () => [] } as unknown as CommandContext;
  const sent: { callId: string; msg: string }[] = [];
  const forward: Forwarder = {
    async send(callId, msg) {
      sent.push({ callId, msg: msg.toString('latin1') });
      return { reply: Buffer.from('c d6:result2:oke'), error: false, cached: false, ...reply };
    },
  };
  const ng = new NgServer(ctx, log, { udp: [], tcp: [], forward });
  const call = async (dict: Record<string, NgValue>) => {
    const r = await ng.handle(Buffer.concat([Buffer.from('c '), encodeBencode(dict)]), '127.0.0.1:5060');
    return decodeBencodeDict(r!.subarray(2));
  };
  return { ng, ctx, sent, call };
}

test('commands about a call go to its thread, under the call-id as Params reads it (aliases too)', async () => {
  const { sent, call } = setUp();
  await call({ command: 'offer', 'call-id': 'abc', sdp: 'v=0' });
  await call({ command: 'delete', 'Call-ID': 'xyz' });
  await call({ command: 'query', 'call ID': 'q1' });
  assert.deepEqual(sent.map((s) => s.callId), ['abc', 'xyz', 'q1']);
  assert.ok(sent[0]!.msg.startsWith('c d'), 'the whole message, cookie included');
});

test('ping, list and statistics stay; so does a message that does not decode', async () => {
  const { sent, call, ng } = setUp();
  assert.equal((await call({ command: 'ping' })).result?.toString(), 'pong');
  const bad = await ng.handle(Buffer.from('c d7:command'), '127.0.0.1:5060');
  assert.equal(decodeBencodeDict(bad!.subarray(2))['result']?.toString(), 'error');
  assert.equal(sent.length, 0);
});

test('a command without a call-id, or an unknown one, goes too (its thread words the error) under ""', async () => {
  const { sent, call } = setUp();
  await call({ command: 'answer', 'from-tag': 'a' });
  await call({ command: 'frobnicate', 'call-id': 5 });
  assert.deepEqual(sent.map((s) => s.callId), ['', '']);
});

test('routed replies are counted here: errors as errors, cached ones not again', async () => {
  const a = setUp({ error: true });
  await a.call({ command: 'offer', 'call-id': 'e' });
  assert.deepEqual([a.ctx.stats.byCommand.get('offer')?.count, a.ctx.stats.byCommand.get('offer')?.errors], [1, 1]);
  const b = setUp({ cached: true });
  await b.call({ command: 'offer', 'call-id': 'e' });
  assert.equal(b.ctx.stats.byCommand.get('offer'), undefined);
});

test('threadOf: stable, in range, and spread', () => {
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) {
    const t = threadOf(`call-${i}@10.0.0.1`, 4);
    assert.equal(t, threadOf(`call-${i}@10.0.0.1`, 4));
    counts[t]!++;
  }
  for (const c of counts) assert.ok(c > 800 && c < 1200, `even enough: ${counts.join(' ')}`);
});

test('exactBytes: a pooled Buffer is copied into its own ArrayBuffer, a whole one is not', () => {
  const pooled = Buffer.from('hello');
  const e = exactBytes(pooled);
  assert.equal(e.byteLength, e.buffer.byteLength);
  assert.deepEqual(Buffer.from(e), pooled);
  const whole = new Uint8Array(8);
  assert.equal(exactBytes(whole), whole);
});
