// A media worker thread: a LocalMediaPlane over its own share of the port range, driven by
// plain messages from WorkerMediaPlane. Counters go to shared memory; state changes as messages.
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { LocalMediaPlane } from './relay.js';
import { CounterSlots } from './counters.js';
import { NoPortsError } from './plane.js';
import { readToWorker, writeFromWorker, type FromWorker, type Tape, type ToWorker, type WorkerInit } from './worker-protocol.js';
import { udpIo, type PacketHandler, type UdpIo } from './udp.js';
import { TapeRing, type TapeRingInit } from './tape-ring.js';
import { ChurnMap } from './churn-map.js';
import { nameThread } from './native-addon.js';

const { init, port, ring: ringInit } = workerData as { init: WorkerInit; port: MessagePort; ring: TapeRingInit };
nameThread(`media-${init.index}`);
const ring = new TapeRing(ringInit);
// What the worker says in one event-loop turn leaves as one message (worker-protocol's tape).
let outbox: Tape = [];
const flush = (): void => {
  const tape = outbox;
  outbox = [];
  port.postMessage(tape);
};
const post = (m: FromWorker): void => {
  if (outbox.length === 0) setImmediate(flush);
  writeFromWorker(outbox, m);
};

const clock = { nowMs: Date.now() };
const tick = setInterval(() => { clock.nowMs = Date.now(); }, 250);
const counters = new CounterSlots(true, (index, buffer) => post({ type: 'chunk', index, buffer: buffer as SharedArrayBuffer }));
// Ids index + 1, index + 1 + count, …: the main thread finds a socket's worker from its id alone.
const io = udpIo(init.socketIo);
io.setParking?.(init.socketPark.ms, init.socketPark.maxOpen);
const plane = new LocalMediaPlane(init.range, clock, init.addresses, { idStart: init.idStart, idStep: init.count, counters, io: readingRingFirst(io) });
// Sockets whose remote the worker learned or confirmed (or ICE chose): the main thread may have
// had an event about them that an install since overrides, so installs answer with their state.
// A ChurnMap: every call's sockets come and go through it (churn-map.ts says why not a Set).
const eventful = new ChurnMap<number, true>(true);
plane.onEvent((ev) => {
  if (ev.type === 'learned' || ev.type === 'confirmed' || ev.type === 'ice') eventful.set(ev.id, true);
  post({ type: 'event', ev });
});

let portsDirty = false;
const portsLater = (): void => {
  if (portsDirty) return;
  portsDirty = true;
  setImmediate(() => { portsDirty = false; post({ type: 'ports', ports: plane.ports(), seen }); });
};

// What the main thread says comes through the ring (media/tape-ring.ts) and, for what the ring
// cannot carry, as posted tapes that end with the ring position they follow. Both are read in the
// main thread's order: a posted tape after the ring up to its position, the ring's rest after that.
// `seen` counts the tapes handled (a wake-up posted alone is no tape): the ports snapshots say it.
let seen = 0;
const readTape = (tape: Tape): void => { seen++; readToWorker(tape, handle); };
function onPosted(tape: Tape): void {
  ring.read(readTape, tape.pop() as number);
  if (tape.length > 0) readTape(tape);
}
/** Everything the main thread has said so far, handled now (before a datagram, after a message). */
function catchUp(): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) onPosted(m.message as Tape);
  ring.read(readTape);
}
port.on('message', (tape: Tape) => { onPosted(tape); catchUp(); });

/** The socket layer with the ring read before each datagram: its socket's plan may be there. */
function readingRingFirst(io: UdpIo): UdpIo {
  const guard = (onPacket: PacketHandler): PacketHandler => (buf, address, p) => {
    if (!ring.empty) catchUp();
    onPacket(buf, address, p);
  };
  return {
    kind: io.kind, borrowedBuffers: io.borrowedBuffers,
    bind: (address, p, onPacket, onError, opts) => io.bind(address, p, guard(onPacket), onError, opts),
    ...(io.prebind ? { prebind: io.prebind.bind(io) } : {}),
    ...(io.parking ? { parking: io.parking.bind(io) } : {}),
  };
}

function handle(m: ToWorker): void {
  switch (m.op) {
    case 'open':
      plane.openPair(m.address).then((pair) => {
        const a = plane.slotOf(pair.rtp)!, b = plane.slotOf(pair.rtcp)!;
        post({ type: 'opened', req: m.req, pair, slots: [a, b], ports: plane.ports(), seen });
      }, (e: Error) => {
        post({ type: 'open-failed', req: m.req, noPorts: e instanceof NoPortsError, message: e.message, ports: plane.ports(), seen });
      });
      break;
    case 'install': {
      plane.install(m.plans);
      // The main thread set the others' state as this install does (WorkerMediaPlane.install),
      // but for ICE, whose remote is the pair ICE selected, not the SDP's.
      let ids: number[] | null = null;
      for (const p of m.plans) if (eventful.has(p.id) || p.ice) (ids ??= []).push(p.id);
      if (ids !== null) post({ type: 'state', states: plane.remoteStates(ids) });
      break;
    }
    case 'close':
      plane.close(m.ids);
      for (const id of m.ids) eventful.delete(id);
      portsLater();
      break;
    case 'shutdown':
      clearInterval(tick);
      void plane.shutdown().then(() => post({ type: 'shutdown-done', req: m.req }));
      break;
    // Call recording (the hub inside the plane owns the recorders of this worker's calls).
    case 'rec-start': plane.startRecording(m.req); break;
    case 'rec-update': plane.updateRecording(m.group, m.streams); break;
    case 'rec-pause': plane.pauseRecording(m.group); break;
    case 'rec-resume': plane.resumeRecording(m.group); break;
    case 'rec-stop':
      void plane.stopRecording(m.group).then((files) => post({ type: 'rec-stopped', req: m.req, files }));
      break;
    case 'cert': plane.setCertificate(m.cert); break;
    case 'crash':
      setImmediate(() => { throw new Error('media worker crash requested (test hook)'); });
      break;
  }
}


// SRTP failure counts and ICE/DTLS states for the main thread's stats(), once a second when changed;
// the ports snapshot too when the parking figures changed.
let lastSec = '', lastParking = '';
const secTick = setInterval(() => {
  const states = plane.securityStates();
  const key = JSON.stringify(states);
  if (key !== lastSec) { lastSec = key; post({ type: 'sec', states }); }
  // Parked sockets close when their time is up, with no message to send a snapshot after.
  const parking = io.parking ? JSON.stringify(io.parking()) : '';
  if (parking !== lastParking) { lastParking = parking; portsLater(); }
}, 1000);
secTick.unref();

post({ type: 'ready', ports: plane.ports(), seen });
