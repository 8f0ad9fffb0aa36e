// The media socket layer (media/udp.ts): the native batched addon and the node:dgram fallback
// behave the same through the one interface. Real sockets on 127.0.0.1 and ::1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dgramIo, ipv4ToInt, udpIo, type UdpIo, type UdpSocket } from '../../../media/udp.js';
import { srtpCryptoKind } from '../../../media/srtp/native.js';
import { boundUdpPorts, freeUdpPort, until } from '../../support/net.js';
import { portRange } from '../../support/daemon.js';

test('ipv4ToInt parses dotted quads and refuses anything else', () => {
  assert.equal(ipv4ToInt('127.0.0.1'), 0x7f000001);
  assert.equal(ipv4ToInt('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToInt('0.0.0.0'), 0);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1..2.3', '::1', '1.2.3.4 ', 'a.b.c.d', '1.2.3.1000']) {
    assert.equal(ipv4ToInt(bad), -1, bad);
  }
});

test('the native addon is built here (CI builds it with npm ci); RTPRELAY_SOCKET_IO=dgram and RTPRELAY_SRTP_CRYPTO=js select the fallbacks', () => {
  assert.equal(udpIo('native').kind, 'native');
  const crypto = process.env.RTPRELAY_SRTP_CRYPTO;
  assert.equal(srtpCryptoKind(), crypto === 'js' ? 'node:crypto' : 'native');
  assert.equal(udpIo('dgram').kind, 'dgram');
  const before = process.env.RTPRELAY_SOCKET_IO;
  process.env.RTPRELAY_SOCKET_IO = 'dgram';
  try { assert.equal(udpIo().kind, 'dgram'); } finally {
    if (before === undefined) delete process.env.RTPRELAY_SOCKET_IO; else process.env.RTPRELAY_SOCKET_IO = before;
  }
});

interface Got { data: Buffer; address: string; port: number }

async function open(io: UdpIo, address: string, port: number, got: Got[], errors: { n: number }): Promise<UdpSocket> {
  // The handler copies: a native view is only valid during the call.
  return io.bind(address, port, (buf, a, p) => got.push({ data: Buffer.from(buf), address: a, port: p }), () => { errors.n++; });
}

function peer(type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  return new Promise((r) => s.bind(0, address, () => r(s)));
}

for (const io of [udpIo('native'), dgramIo]) {
  test(`${io.kind}: receive from and send to IPv4 and IPv6 peers, source address and port as strings`, async (t) => {
    for (const [type, address] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
      const got: Got[] = [], errors = { n: 0 };
      const s = await open(io, address, await freeUdpPort(), got, errors);
      const p = await peer(type, address);
      t.after(() => { p.close(); void s.close(); });
      const local = await localPortOf(io, s, address, p, got);
      // Several datagrams in one burst arrive in order, each whole, with the sender's address.
      for (let i = 0; i < 20; i++) p.send(Buffer.from([0x80, i, 1, 2, 3]), local, address);
      await until(() => got.length >= 21, `${type} burst`);
      assert.deepEqual(got.slice(1).map((g) => g.data[1]), Array.from({ length: 20 }, (_, i) => i));
      assert.equal(got[1]!.address, address);
      assert.equal(got[1]!.port, p.address().port);
      const back = new Promise<Buffer>((r) => p.once('message', (m) => r(m)));
      const out = Buffer.from('reply');
      s.send(out, p.address().port, address);
      assert.deepEqual(await back, Buffer.from('reply'));
      assert.equal(errors.n, 0);
    }
  });

  test(`${io.kind}: a taken port fails with EADDRINUSE; a closed socket's port binds again at once`, async () => {
    const port = await freeUdpPort();
    const got: Got[] = [], errors = { n: 0 };
    const a = await open(io, '127.0.0.1', port, got, errors);
    await assert.rejects(open(io, '127.0.0.1', port, got, errors), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
    await a.close();
    const b = await open(io, '127.0.0.1', port, got, errors);
    await b.close();
  });

  test(`${io.kind}: a send to an unparseable or unreachable address is counted, never thrown`, async () => {
    const got: Got[] = [], errors = { n: 0 };
    const s = await open(io, '127.0.0.1', await freeUdpPort(), got, errors);
    try {
      s.send(Buffer.from('x'), 9, 'not-an-address');
      await until(() => errors.n >= 1, 'an error count');
    } finally { await s.close(); }
  });
}

test('native: datagrams for many sockets in one batch reach each socket\'s own handler; a 60,000-byte datagram arrives whole', async (t) => {
  const io = udpIo('native');
  const p = await peer('udp4', '127.0.0.1');
  const socks: { s: UdpSocket; port: number; got: Got[]; errors: { n: number } }[] = [];
  t.after(async () => { p.close(); for (const x of socks) await x.s.close(); });
  for (let i = 0; i < 40; i++) {
    const port = await freeUdpPort();
    const got: Got[] = [], errors = { n: 0 };
    try { socks.push({ s: await open(io, '127.0.0.1', port, got, errors), port, got, errors }); } catch { /* raced: skip */ }
  }
  for (let round = 0; round < 3; round++) for (const [i, x] of socks.entries()) p.send(Buffer.from([i, round]), x.port, '127.0.0.1');
  await until(() => socks.every((x) => x.got.length === 3), 'three datagrams on every socket');
  for (const [i, x] of socks.entries()) assert.deepEqual(x.got.map((g) => [...g.data]), [[i, 0], [i, 1], [i, 2]]);
  // An NG offer from a browser is several KiB: nothing may be cut.
  const big = Buffer.alloc(60_000, 7);
  big[59_999] = 9;
  p.send(big, socks[0]!.port, '127.0.0.1');
  await until(() => socks[0]!.got.length === 4, 'the large datagram');
  assert.equal(socks[0]!.got[3]!.data.length, 60_000);
  assert.equal(socks[0]!.got[3]!.data[59_999], 9);
  assert.equal(socks[0]!.errors.n, 0);
});

test('native: sendSoon copies the datagram at once and the socket thread sends it, in order, to IPv4 and IPv6 peers; a closed socket sends nothing', async (t) => {
  const io = udpIo('native');
  for (const [type, address] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
    const got: Got[] = [], errors = { n: 0 };
    const s = await open(io, address, await freeUdpPort(), got, errors);
    const p = await peer(type, address);
    t.after(() => { p.close(); void s.close(); });
    const heard: Buffer[] = [];
    p.on('message', (m) => heard.push(m));
    const out = Buffer.alloc(8);
    for (let i = 0; i < 50; i++) {
      out.writeUInt32BE(i, 0);
      out.writeUInt32BE(0xfeedface, 4);
      s.sendSoon!(out, p.address().port, address);
      out.fill(0); // copied already: what goes out is what was there at the call
    }
    await until(() => heard.length >= 50, `${type}: fifty queued datagrams`);
    assert.deepEqual(heard.map((m) => m.readUInt32BE(0)), Array.from({ length: 50 }, (_, i) => i), 'in the order queued');
    assert.ok(heard.every((m) => m.length === 8 && m.readUInt32BE(4) === 0xfeedface), 'each as it was when queued');
    assert.equal(errors.n, 0);
    s.sendSoon!(Buffer.from('bad'), 9, 'not-an-address');
    assert.equal(errors.n, 1, 'an address that does not parse is counted at once');
    await s.close();
    s.sendSoon!(Buffer.from('after close'), p.address().port, address); // ignored, never thrown
  }
  assert.equal(io.sendSoonFailures!(), 0);
});

test('native: a socket closed while datagrams for it wait is silent; its descriptor reused by a new socket gets only its own', async (t) => {
  const io = udpIo('native');
  const p = await peer('udp4', '127.0.0.1');
  t.after(() => p.close());
  const port = await freeUdpPort();
  const first: Got[] = [], errors = { n: 0 };
  const a = await open(io, '127.0.0.1', port, first, errors);
  // Once the send callback ran, loopback has queued the datagram on the socket: close before it is read.
  await new Promise<void>((r) => p.send(Buffer.from('old'), port, '127.0.0.1', () => r()));
  await a.close();
  const second: Got[] = [];
  const b = await open(io, '127.0.0.1', port, second, errors);
  t.after(() => b.close());
  p.send(Buffer.from('new'), port, '127.0.0.1');
  await until(() => second.length >= 1, 'the new socket hears its datagram');
  assert.equal(first.length, 0);
  assert.equal(second.length, 1);
  assert.equal(second[0]!.data.toString(), 'new');
});

function bindDgram(port: number): Promise<dgram.Socket | null> {
  const s = dgram.createSocket('udp4');
  return new Promise((r) => {
    s.once('error', () => { s.close(); r(null); });
    s.bind({ port, address: '127.0.0.1', exclusive: true }, () => r(s));
  });
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('native: a prebound port is held by the socket thread, bind() takes that socket and it works; closed, the port is free again', async (t) => {
  const io = udpIo('native');
  assert.ok(io.prebind);
  const port = await freeUdpPort();
  io.prebind('127.0.0.1', port);
  // The socket thread binds it (after this turn): another program cannot have it meanwhile.
  await until(() => boundUdpPorts(port, port).length === 1, 'the socket thread holds the port');
  const got: Got[] = [], errors = { n: 0 };
  const s = await open(io, '127.0.0.1', port, got, errors);
  const p = await peer('udp4', '127.0.0.1');
  t.after(() => p.close());
  p.send(Buffer.from('to the prebound socket'), port, '127.0.0.1');
  await until(() => got.length === 1, 'the datagram');
  assert.equal(got[0]!.data.toString(), 'to the prebound socket');
  await s.close();
  // The close is the socket thread's too: the port comes free without another call from us.
  await until(() => boundUdpPorts(port, port).length === 0, 'the port free after close');
});

test('native: a prebound port another program took first still fails with EADDRINUSE; sockets closed in bulk give their descriptors back', async () => {
  const io = udpIo('native');
  const port = await freeUdpPort();
  const other = await bindDgram(port);
  assert.ok(other);
  try {
    io.prebind!('127.0.0.1', port);
    await new Promise((r) => setImmediate(r));
    const got: Got[] = [], errors = { n: 0 };
    await assert.rejects(open(io, '127.0.0.1', port, got, errors), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
  } finally { other.close(); }
  const before = openFds();
  const socks: UdpSocket[] = [];
  const errors = { n: 0 };
  for (let i = 0; i < 50; i++) socks.push(await open(io, '127.0.0.1', 0, [], errors));
  assert.equal(openFds(), before + 50);
  for (const s of socks) await s.close();
  await until(() => openFds() === before, 'descriptors back to where they were');
});

/** Sends one datagram to learn that the socket works; returns its port. */
async function localPortOf(io: UdpIo, s: UdpSocket, address: string, p: dgram.Socket, got: Got[]): Promise<number> {
  // The socket does not expose its port: ask the peer to reply to where our send came from.
  const seen = new Promise<number>((r) => p.once('message', (_m, rinfo) => r(rinfo.port)));
  s.send(Buffer.from('hello'), p.address().port, address);
  const port = await seen;
  p.send(Buffer.from('first'), port, address);
  await until(() => got.length >= 1, `${io.kind} first datagram`);
  return port;
}

// ---- parking (SocketPark in media/udp.ts) -----------------------------------------------------

/** The io's parking figures for 127.0.0.1 (all 0 before its first parked socket). */
function parkingAt(io: UdpIo): { parked: number; reused: number; drops: number } {
  return io.parking!().find((f) => f.address === '127.0.0.1') ?? { parked: 0, reused: 0, drops: 0 };
}

test('native parking: a closed socket keeps its port; a bind of that port takes it with the datagrams that reached it meanwhile dropped; past its time it closes', async (t) => {
  const io = udpIo('native');
  let now = 0;
  io.setParking!(1000, Infinity, () => now);
  t.after(() => io.setParking!(0, 0));
  const port = await freeUdpPort();
  const old: Got[] = [], errors = { n: 0 };
  const a = await open(io, '127.0.0.1', port, old, errors);
  const before = parkingAt(io);
  await a.close();
  assert.equal(parkingAt(io).parked, before.parked + 1);
  assert.equal(await bindDgram(port).then((s) => { s?.close(); return s !== null; }), false, 'the port stays ours while parked');
  // A datagram read while parked is dropped (not handed to the closed socket's handler)...
  const p = await peer('udp4', '127.0.0.1');
  t.after(() => p.close());
  p.send(Buffer.from('read while parked'), port, '127.0.0.1');
  await until(() => parkingAt(io).drops > before.drops, 'the parked socket drops it');
  // ...and one still queued when the port is bound again is drained: sent synchronously from a
  // native socket and bound in the same turn, before the event loop can read it.
  const sender = await open(io, '127.0.0.1', 0, [], { n: 0 });
  t.after(() => sender.close());
  sender.send(Buffer.from('queued while parked'), port, '127.0.0.1');
  const got: Got[] = [];
  const b = await open(io, '127.0.0.1', port, got, errors);
  t.after(() => b.close());
  assert.equal(parkingAt(io).reused, before.reused + 1, 'the bind took the parked socket');
  p.send(Buffer.from('for the new owner'), port, '127.0.0.1');
  await until(() => got.length === 1, 'the new owner\'s datagram');
  assert.deepEqual(got.map((g) => g.data.toString()), ['for the new owner']);
  assert.deepEqual(old, [], 'the first owner heard nothing after its close');
  // The closed first owner can neither send on the descriptor nor close it under the new owner.
  await a.close();
  p.send(Buffer.from('still the new owner\'s'), port, '127.0.0.1');
  await until(() => got.length === 2, 'the second datagram');
  // Parked again: kept until `ms` have passed on the injected clock, then closed.
  await b.close();
  now = 999;
  io.expireParked!();
  assert.equal(boundUdpPorts(port, port).length, 1, 'kept 999 ms');
  now = 1000;
  io.expireParked!();
  await until(() => boundUdpPorts(port, port).length === 0, 'closed once parked 1000 ms');
  assert.equal(errors.n, 0);
});

test('native parking: open and parked sockets stay within maxOpen (a close past it closes); setParking(0) closes the parked; port 0 is never parked', async (t) => {
  const io = udpIo('native');
  io.setParking!(60_000, 2, () => 0);
  t.after(() => io.setParking!(0, 0));
  const ports = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
  const [a, b, c] = [await open(io, '127.0.0.1', ports[0]!, [], { n: 0 }), await open(io, '127.0.0.1', ports[1]!, [], { n: 0 }), await open(io, '127.0.0.1', ports[2]!, [], { n: 0 })];
  t.after(async () => { for (const s of [a, b, c]) await s.close(); });
  const k = await open(io, '127.0.0.1', 0, [], { n: 0 });
  await k.close();
  assert.equal(parkingAt(io).parked, 0, 'a port the kernel chose is closed');
  await a.close(); // 2 open + 0 parked: no room
  assert.equal(parkingAt(io).parked, 0);
  await b.close(); // 1 open + 0 parked < 2: parked
  assert.equal(parkingAt(io).parked, 1);
  await c.close(); // 0 open + 1 parked < 2: parked
  assert.equal(parkingAt(io).parked, 2);
  await until(() => boundUdpPorts(ports[0]!, ports[0]!).length === 0, 'the socket closed past the budget frees its port');
  assert.equal(boundUdpPorts(ports[1]!, ports[1]!).length + boundUdpPorts(ports[2]!, ports[2]!).length, 2);
  io.setParking!(0, 0);
  assert.equal(parkingAt(io).parked, 0);
  await until(() => boundUdpPorts(ports[1]!, ports[1]!).length + boundUdpPorts(ports[2]!, ports[2]!).length === 0, 'parked sockets closed');
});

test('native parking: at the open-file limit, parked sockets give way to new binds (a child process under prlimit)', async () => {
  const udp = new URL('../../../media/udp.js', import.meta.url).href;
  const range = portRange(400);
  const min = Number(range[0]!.split('=')[1]);
  const script = `
    import { udpIo } from ${JSON.stringify(udp)};
    const io = udpIo('native');
    io.setParking(60000, Infinity);
    const bindOn = async (port) => { try { return await io.bind('127.0.0.1', port, () => {}, () => {}); } catch (e) { return e.code; } };
    const first = [];
    let stop = null;
    for (let i = 0; i < 200 && stop === null; i++) {
      const r = await bindOn(${min} + i);
      if (typeof r === 'string') { if (r !== 'EADDRINUSE') stop = r; } else first.push(r);
    }
    for (const s of first) await s.close();
    const parked = io.parking().reduce((n, f) => n + f.parked, 0);
    let again = 0, failed = null;
    for (let i = 200; i < 400 && again < first.length && failed === null; i++) {
      const r = await bindOn(${min} + i);
      if (typeof r === 'string') { if (r !== 'EADDRINUSE') failed = r; } else again++;
    }
    console.log(JSON.stringify({ stop, first: first.length, parked, again, failed, parkedAfter: io.parking().reduce((n, f) => n + f.parked, 0) }));
    process.exit(0);`;
  const out = execFileSync('prlimit', ['--nofile=64:64', '--', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  const r = JSON.parse(out.trim().split('\n').at(-1)!);
  assert.equal(r.stop, 'EMFILE', 'the first binds ran into the limit');
  assert.ok(r.first > 10, `${r.first} sockets before the limit`);
  assert.equal(r.parked, r.first, 'all of them parked when closed');
  assert.equal(r.failed, null, 'no bind failed for the parked sockets\' descriptors');
  assert.equal(r.again, r.first, 'as many new sockets on other ports');
  assert.equal(r.parkedAfter, 0);
});
