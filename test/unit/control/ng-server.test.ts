// NgServer driven directly (no daemon): the TCP per-connection buffer cap and idle timeout; how UDP replies leave.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { NgServer } from '../../../control/ng-server.js';
import type { CommandContext } from '../../../control/commands/context.js';

async function server(t: TestContext, opts: { tcpMaxBuffer?: number; tcpIdleMs?: number }) {
  const log = pino({ level: 'silent' });
  // `ping` touches nothing but the counters.
  const ctx = { log, stats: { byCommand: new Map(), byProxy: new Map() }, startedMs: 0, nowMs: () => 0, ports: () => [] } as unknown as CommandContext;
  const s = new NgServer(ctx, log, { udp: [], tcp: [{ address: '127.0.0.1', port: 0 }], ...opts });
  const { tcp } = await s.start();
  t.after(() => s.close());
  return { port: tcp[0]!.port, ctx };
}

async function connect(port: number) {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => undefined);
  await new Promise<void>((r) => c.once('connect', r));
  let got = '';
  c.on('data', (d) => { got += d.toString('latin1'); });
  const closed = new Promise<boolean>((r) => c.once('close', () => r(true)));
  return { c, got: () => got, closed: (ms: number) => Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), ms))]) };
}

test('an incomplete message over the buffer cap closes the connection; complete ones are fine', async (t) => {
  const { port } = await server(t, { tcpMaxBuffer: 1024 });
  const ok = await connect(port);
  t.after(() => ok.c.destroy());
  ok.c.write('c1 d7:command4:ping1:x2000:' + 'y'.repeat(2000) + 'e');
  assert.equal(await ok.closed(300), false);
  assert.equal(ok.got(), 'c1 d6:result4:ponge', 'a complete message larger than the cap arrived in one go');
  const big = await connect(port);
  t.after(() => big.c.destroy());
  big.c.write('c2 d7:command4:ping1:x5000:');
  for (let i = 0; i < 3; i++) { big.c.write('y'.repeat(500)); await new Promise((r) => setTimeout(r, 10)); }
  assert.equal(await big.closed(2000), true, 'closed while still waiting for the rest');
  assert.equal(big.got(), '');
});

test('an idle connection is closed; an active one is not', async (t) => {
  const { port } = await server(t, { tcpIdleMs: 300 });
  const idle = await connect(port);
  t.after(() => idle.c.destroy());
  assert.equal(await idle.closed(3000), true);
  const busy = await connect(port);
  t.after(() => busy.c.destroy());
  for (let i = 0; i < 4; i++) {
    busy.c.write(`b${i} d7:command4:pinge`);
    assert.equal(await busy.closed(150), false);
  }
  assert.equal(busy.got(), 'b0 d6:result4:pongeb1 d6:result4:pongeb2 d6:result4:pongeb3 d6:result4:ponge');
});

test('a cookie without a space, or an overlong one, closes the connection', async (t) => {
  const { port, ctx } = await server(t, {});
  const c = await connect(port);
  t.after(() => c.c.destroy());
  c.c.write('x'.repeat(300));
  assert.equal(await c.closed(2000), true);
  const d = await connect(port);
  t.after(() => d.c.destroy());
  d.c.write(' d7:command4:pinge');
  assert.equal(await d.closed(2000), true, 'empty cookie');
  assert.equal(ctx.stats.byCommand.size, 0, 'nothing was executed');
});

test('UDP replies go out through the socket\'s sendSoon when it has one (the native socket thread), at once by send with replyNow, else by send after the turn', async (t) => {
  const log = pino({ level: 'silent' });
  const ctx = { log, stats: { byCommand: new Map(), byProxy: new Map() }, startedMs: 0, nowMs: () => 0, ports: () => [] } as unknown as CommandContext;
  for (const [soon, replyNow] of [[true, false], [true, true], [false, false], [false, true]] as const) {
    const sent: { how: string; data: string; port: number; address: string }[] = [];
    let deliver: ((buf: Buffer, address: string, port: number) => void) | null = null;
    const sock = {
      send: (buf: Buffer, port: number, address: string) => { sent.push({ how: 'send', data: buf.toString('latin1'), port, address }); },
      ...(soon ? { sendSoon: (buf: Buffer, port: number, address: string) => { sent.push({ how: 'soon', data: buf.toString('latin1'), port, address }); } } : {}),
      close: () => Promise.resolve(),
      localPort: () => 2223,
    };
    const udpIo = {
      borrowedBuffers: true,
      bind: (_a: string, _p: number, onPacket: (buf: Buffer, address: string, port: number) => void) => { deliver = onPacket; return Promise.resolve(sock); },
    };
    const s = new NgServer(ctx, log, { udp: [{ address: '127.0.0.1', port: 2223 }], tcp: [], udpIo, replyNow });
    await s.start();
    t.after(() => s.close());
    const turn = new Promise((r) => setImmediate(r)); // queued before the reply's own flush
    deliver!(Buffer.from('c1 d7:command4:pinge'), '127.0.0.1', 5060);
    await turn;
    if (soon && replyNow) assert.deepEqual(sent, [{ how: 'send', data: 'c1 d6:result4:ponge', port: 5060, address: '127.0.0.1' }], 'sent by this thread as soon as it is ready');
    else if (soon) assert.deepEqual(sent, [{ how: 'soon', data: 'c1 d6:result4:ponge', port: 5060, address: '127.0.0.1' }], 'queued as soon as it is ready');
    else {
      assert.deepEqual(sent, [], 'held until the requests of this turn are done');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(sent, [{ how: 'send', data: 'c1 d6:result4:ponge', port: 5060, address: '127.0.0.1' }]);
    }
  }
});
