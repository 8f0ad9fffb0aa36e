// A media worker thread: a LocalMediaPlane over its own share of the port range, driven by
// plain messages from WorkerMediaPlane. Counters go to shared memory; state changes as messages.
import { workerData, type MessagePort } from 'node:worker_threads';
import { LocalMediaPlane } from './relay.js';
import { CounterSlots } from './counters.js';
import { NoPortsError } from './plane.js';
import { readToWorker, writeFromWorker, type FromWorker, type Tape, type ToWorker, type WorkerInit } from './worker-protocol.js';
import { udpIo } from './udp.js';

const { init, port } = workerData as { init: WorkerInit; port: MessagePort };
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
const plane = new LocalMediaPlane(init.range, clock, init.addresses, { idStart: init.idStart, idStep: init.count, counters, io: udpIo(init.socketIo) });
plane.onEvent((ev) => post({ type: 'event', ev }));

let portsDirty = false;
const portsLater = (): void => {
  if (portsDirty) return;
  portsDirty = true;
  setImmediate(() => { portsDirty = false; post({ type: 'ports', ports: plane.ports() }); });
};

port.on('message', (tape: Tape) => readToWorker(tape, handle));

function handle(m: ToWorker): void {
  switch (m.op) {
    case 'open':
      plane.openPair(m.address).then((pair) => {
        const a = plane.slotOf(pair.rtp)!, b = plane.slotOf(pair.rtcp)!;
        post({ type: 'opened', req: m.req, pair, slots: [a, b], ports: plane.ports() });
      }, (e: Error) => {
        post({ type: 'open-failed', req: m.req, noPorts: e instanceof NoPortsError, message: e.message, ports: plane.ports() });
      });
      break;
    case 'install': {
      plane.install(m.plans);
      const states = plane.remoteStates(m.plans.map((p) => p.id));
      post({ type: 'state', states });
      break;
    }
    case 'close':
      plane.close(m.ids);
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


// SRTP failure counts and ICE/DTLS states for the main thread's stats(), once a second when changed.
let lastSec = '';
const secTick = setInterval(() => {
  const states = plane.securityStates();
  const key = JSON.stringify(states);
  if (key !== lastSec) { lastSec = key; post({ type: 'sec', states }); }
}, 1000);
secTick.unref();

post({ type: 'ready', ports: plane.ports() });
