// The media plane spread over worker threads: each worker runs a LocalMediaPlane over its own
// slice of the port range (ports never collide) and owns its sockets. The main thread keeps a
// mirror of each socket (remote, confirmation) and reads the counters from shared memory, so
// `stats()` needs no round trip. Imports nothing of ours outside media/.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import {
  addParking, NoPortsError, READY_PAIRS, type Endpoint, type MediaPlane, type OpenedPair, type PlaneEvent, type PortFigures, type RecordedFile,
  type RecordingRequest, type RecordingStream, type SocketId, type SocketPlan, type SocketStats,
} from './plane.js';
import { readQuality } from './quality.js';
import { ChurnMap } from './churn-map.js';
import { TapeRing } from './tape-ring.js';
import type { SocketParking } from './udp.js';
import { C_BYTES, C_DROPPED, C_ERRORS, C_LAST_MS, C_PACKETS, C_SSRC, SLOT_FIELDS } from './counters.js';
import {
  readFromWorker, writeToWorker, type FromWorker, type PortsSnapshot, type SecurityState, type SlotRef, type Tape, type ToWorker, type WorkerInit,
} from './worker-protocol.js';

interface Mirror {
  worker: number;
  group: string | undefined;
  kind: 'rtp' | 'rtcp';
  localAddress: string;
  localPort: number;
  view: Float64Array;
  remote: Endpoint | null;
  confirmed: boolean;
  sdpKey: string;
  /** SRTP failures and ICE/DTLS state, as the worker last reported them (WebRTC sockets only). */
  sec?: SecurityState;
}

interface Opened { pair: OpenedPair; slots: [SlotRef, SlotRef] }
interface Pending { resolve: (r: Opened) => void; reject: (e: Error) => void }

interface WorkerSlot {
  index: number;
  range: { min: number; max: number };
  worker: Worker | null;
  /** Everything the worker says comes here, in order; `stats()` drains it synchronously first. */
  port: MessagePort | null;
  handle: (m: FromWorker) => void;
  /** Ready and not dead: may take new sockets. */
  alive: boolean;
  generation: number;
  chunks: Float64Array[];
  ports: Map<string, PortFigures>;
  pending: ChurnMap<number, Pending>;
  /** Recordings being stopped: the worker answers with the files. */
  recStops: Map<number, (files: RecordedFile[]) => void>;
  /** Why it died, when it did (the 'error' event comes before 'exit'). */
  failure: string | null;
  deaths: number[];
  /** Messages posted in this task, sent together (see post()), as worker-protocol's tape. */
  outbox: Tape;
  /** Whether the outbox asks for pairs (the worker is woken at once, not WAKE_MS later). */
  urgent: boolean;
  /** Where tapes go without waking the worker (media/tape-ring.ts); one per life of the worker. */
  ring: TapeRing | null;
  /** The worker is woken when this fires, if it has not read the ring by then. */
  wakeTimer: NodeJS.Timeout | null;
  /** Tapes sent to this life of the worker (its ports snapshots say how many it had handled). */
  sent: number;
  /** Pairs freed by the closes in the outbox, per address. */
  freeing: Map<string, number> | null;
  /** Pairs freed by the closes of tape number `tape`, for tapes the worker may not have handled yet. */
  unseen: { tape: number; freed: Map<string, number> }[];
  /** Per address: pairs the worker opened ahead, for openPair() to take without a round trip. */
  ready: Map<string, Opened[]>;
  /** Per address: ahead-opens asked for and not answered yet. */
  refilling: Map<string, number>;
  /** Per address: openPair() calls that found no ready pair, in order. */
  waiters: Map<string, Waiter[]>;
  /**
   * Groups (calls) of this worker holding an odd number of pairs: a call opens its pairs one side
   * after the other, so each of these is most likely owed one more pair here (see choose()).
   */
  halfOpen: number;
}

/** 1 when a group's `sockets` (two a pair) make an odd number of pairs, else 0. */
const oddPairs = (sockets: number): number => (sockets >> 1) & 1;

/** +1, -1 or 0: how a group's move from `before` to `after` sockets changes WorkerSlot.halfOpen. */
function halfOpenChange(before: number, after: number): number {
  return oddPairs(after) - oddPairs(before);
}

interface Waiter { group: string | undefined; resolve: (p: OpenedPair) => void; reject: (e: Error) => void }

// Each worker keeps READY_PAIRS pairs open ahead per address (media/plane.ts). An offer or answer
// that had to wait for the worker's reply to `open` (a round trip through two event loops) left the
// main thread idle a quarter of the time under ngload; with a pair ready, openPair() answers at
// once and the worker opens the next one meanwhile. They count as free in ports(). More are asked
// for once half are taken, in one go: a request per pair taken woke the worker for each.

/**
 * How long what goes through the ring may wait for the worker to read it, at most, when nothing
 * else wakes the worker first (a datagram, a posted message): closes and the plans of sockets no
 * packet has reached yet. At most one wake-up per worker per WAKE_MS, not one per NG command.
 */
const WAKE_MS = 2;

/** Generations of a worker get id spaces this far apart, so a respawned worker never reuses an id. */
const GENERATION_SPAN = 2 ** 36;
/** A worker that dies more often than this per minute stays dead (crash loop). */
const MAX_RESPAWNS_PER_MINUTE = 5;

export interface WorkerPlaneOptions {
  /** Called with one line when a worker dies or is respawned (the plane cannot log). */
  onNotice?: (msg: string, fields: Record<string, unknown>) => void;
  /** Socket layer of the workers (media/udp.ts). */
  socketIo?: 'auto' | 'native' | 'dgram';
  /** Each worker's parking of freed ports' sockets (media/udp.ts; default: none). */
  socketPark?: SocketParking;
  /** Longest a tape waits in a worker's ring before the worker is woken to read it (default WAKE_MS). */
  wakeMs?: number;
}

/** Splits [min, max] into `count` slices of whole RTP/RTCP pairs. */
export function sliceRange(range: { min: number; max: number }, count: number): { min: number; max: number }[] {
  const first = range.min % 2 === 0 ? range.min : range.min + 1;
  const pairs = Math.max(0, Math.floor((range.max - first + 1) / 2));
  const out: { min: number; max: number }[] = [];
  for (let k = 0; k < count; k++) {
    const a = Math.floor((k * pairs) / count), b = Math.floor(((k + 1) * pairs) / count);
    out.push({ min: first + 2 * a, max: first + 2 * b - 1 });
  }
  return out;
}

export class WorkerMediaPlane implements MediaPlane {
  private readonly workers: WorkerSlot[];
  // ChurnMaps: sockets and calls come and go all the time (churn-map.ts says why not a Map).
  private readonly sockets = new ChurnMap<SocketId, Mirror>(true);
  private readonly groups = new ChurnMap<string, { worker: number; sockets: number }>();
  private readonly listeners: ((ev: PlaneEvent) => void)[] = [];
  private nextReq = 1;
  private rr = 0;
  private stopping = false;

  private constructor(
    range: { min: number; max: number },
    count: number,
    private readonly addresses: readonly string[],
    private readonly opts: WorkerPlaneOptions,
  ) {
    this.workers = sliceRange(range, count).map((r, index) => ({
      index, range: r, worker: null, port: null, handle: () => undefined, alive: false, generation: 0, chunks: [], ports: new Map(), outbox: [], urgent: false, ring: null, wakeTimer: null, sent: 0, freeing: null, unseen: [], ready: new Map(), refilling: new Map(), waiters: new Map(), halfOpen: 0,
      pending: new ChurnMap(true), recStops: new Map(), failure: null, deaths: [],
    }));
  }

  /** Starts `count` workers (at most one per port pair) and resolves when all are ready. */
  static async start(range: { min: number; max: number }, count: number, addresses: readonly string[], opts: WorkerPlaneOptions = {}): Promise<WorkerMediaPlane> {
    const first = range.min % 2 === 0 ? range.min : range.min + 1;
    const pairs = Math.max(1, Math.floor((range.max - first + 1) / 2));
    const plane = new WorkerMediaPlane(range, Math.max(1, Math.min(count, pairs)), addresses, opts);
    await Promise.all(plane.workers.map((w) => plane.spawn(w)));
    return plane;
  }

  get workerCount(): number { return this.workers.length; }

  /** Index of the worker that owns a socket (ids carry it). */
  workerOf(id: SocketId): number { return (id - 1) % this.workers.length; }

  private spawn(w: WorkerSlot): Promise<void> {
    const init: WorkerInit = {
      index: w.index, count: this.workers.length, range: w.range, addresses: [...this.addresses],
      idStart: w.index + 1 + this.workers.length * GENERATION_SPAN * w.generation,
      socketIo: this.opts.socketIo ?? 'auto',
      socketPark: this.opts.socketPark ?? { ms: 0, maxOpen: 0 },
    };
    const { port1, port2 } = new MessageChannel();
    const ring = TapeRing.create();
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { init, port: port2, ring: ring.init }, transferList: [port2], name: `media-${w.index}`,
    });
    w.worker = worker;
    w.port = port1;
    w.ring = ring;
    w.sent = 0;
    w.freeing = null;
    w.unseen = [];
    w.chunks = [];
    w.failure = null;
    return new Promise((resolve, reject) => {
      let ready = false;
      w.handle = (m: FromWorker): void => {
        if (m.type === 'ready') {
          ready = true;
          w.alive = true;
          this.setPorts(w, m.ports, m.seen);
          if (this.cert !== null) this.post(w, { op: 'cert', cert: this.cert }); // a restarted worker too
          for (const a of this.addresses) this.refill(w, a);
          resolve();
          return;
        }
        this.onMessage(w, m);
      };
      port1.on('message', (tape: Tape) => this.receive(w, tape));
      worker.on('error', (err) => { w.failure = err.message; });
      worker.on('exit', (code) => {
        if (w.worker !== worker) return;
        // What it said before dying still counts (e.g. a learned peer).
        this.drain(w);
        port1.close();
        w.worker = null;
        w.port = null;
        w.ring = null;
        if (w.wakeTimer !== null) { clearTimeout(w.wakeTimer); w.wakeTimer = null; }
        if (!ready) { reject(new Error(`media worker ${w.index} failed to start: ${w.failure ?? `exit ${code}`}`)); return; }
        if (!this.stopping) this.onDeath(w, w.failure ?? `exit code ${code}`);
      });
    });
  }

  /** Handles what the worker has posted so far, now: state read right after a packet is current. */
  private drain(w: WorkerSlot): void {
    const port = w.port;
    if (!port) return;
    for (let r = receiveMessageOnPort(port); r !== undefined; r = receiveMessageOnPort(port)) this.receive(w, r.message as Tape);
  }

  private drainAll(): void {
    for (const w of this.workers) this.drain(w);
  }

  /**
   * The worker's count of free pairs, plus those freed by the closes sent after the tapes it had
   * handled when it counted (it has not seen them yet: they wait in the ring, or were not sent).
   */
  private setPorts(w: WorkerSlot, ports: PortsSnapshot[], seen: number): void {
    const unseen = w.unseen;
    let k = 0;
    while (k < unseen.length && unseen[k]!.tape <= seen) k++;
    if (k > 0) unseen.splice(0, k);
    for (const p of ports) {
      let free = p.free;
      for (const u of unseen) free += u.freed.get(p.address) ?? 0;
      const f = w.freeing?.get(p.address);
      if (f !== undefined) free += f;
      w.ports.set(p.address, { ...p, free: Math.min(free, p.total) });
    }
  }

  private onMessage(w: WorkerSlot, m: FromWorker): void {
    switch (m.type) {
      case 'chunk': w.chunks[m.index] = new Float64Array(m.buffer); break;
      case 'opened': {
        this.setPorts(w, m.ports, m.seen);
        w.pending.get(m.req)?.resolve({ pair: m.pair, slots: m.slots });
        w.pending.delete(m.req);
        break;
      }
      case 'open-failed': {
        this.setPorts(w, m.ports, m.seen);
        w.pending.get(m.req)?.reject(m.noPorts ? new NoPortsError('') : new Error(m.message));
        w.pending.delete(m.req);
        break;
      }
      case 'event': {
        const ev = m.ev;
        if (ev.type === 'learned' || ev.type === 'confirmed') {
          const s = this.sockets.get(ev.id);
          if (!s) return; // closed meanwhile
          s.remote = ev.remote;
          s.confirmed = true;
        }
        if (ev.type === 'ice') this.onIceEvent(ev);
        this.emit(ev);
        break;
      }
      case 'state':
        for (const st of m.states) {
          const s = this.sockets.get(st.id);
          if (s) { s.remote = st.remote; s.confirmed = st.confirmed; }
        }
        break;
      case 'ports': this.setPorts(w, m.ports, m.seen); break;
      case 'shutdown-done': w.pending.get(m.req)?.resolve(null as never); w.pending.delete(m.req); break;
      case 'rec-stopped': w.recStops.get(m.req)?.(m.files); w.recStops.delete(m.req); break;
      case 'ready': break;
      case 'sec':
        for (const st of m.states) { const s = this.sockets.get(st.id); if (s) s.sec = st; }
        break;
    }
  }

  // ---- WebRTC: certificate to every worker, ICE's choice of destination, security stats -------

  private cert: { certPem: string; keyPem: string } | null = null;

  setCertificate(cert: { certPem: string; keyPem: string }): void {
    this.cert = { certPem: cert.certPem, keyPem: cert.keyPem };
    for (const w of this.workers) if (w.alive) this.post(w, { op: 'cert', cert: this.cert });
  }

  private onIceEvent(ev: Extract<PlaneEvent, { type: 'ice' }>): void {
    const s = this.sockets.get(ev.id);
    if (!s) return;
    // Media goes to ICE's selected pair; a failed ICE stops it.
    s.remote = ev.state === 'connected' ? ev.remote : null;
    s.confirmed = s.remote !== null;
    s.sec = { id: ev.id, srtpFailures: s.sec?.srtpFailures ?? 0, ice: ev.state, dtls: s.sec?.dtls ?? null };
  }

  private onDeath(w: WorkerSlot, reason: string): void {
    w.alive = false;
    w.outbox = [];
    w.urgent = false;
    w.freeing = null;
    w.unseen = [];
    // Its ready pairs died with it (the pending opens are rejected below), and whoever waited for one fails.
    w.ready = new Map();
    w.refilling = new Map();
    const waiters = w.waiters;
    w.waiters = new Map();
    for (const list of waiters.values()) for (const x of list) x.reject(new Error(`media worker ${w.index} died`));
    const ids: SocketId[] = [];
    for (const [id, s] of this.sockets) if (s.worker === w.index) ids.push(id);
    for (const id of ids) this.forget(id);
    for (const p of w.pending.values()) p.reject(new Error(`media worker ${w.index} died`));
    w.pending.clear();
    // Its recordings died with it: what reached the disk stays, but no file list comes back.
    for (const done of w.recStops.values()) done([]);
    w.recStops.clear();
    // Its sockets died with it: the whole slice is free again.
    for (const p of w.ports.values()) { p.free = p.total; if (p.parked !== undefined) p.parked = 0; }
    this.opts.onNotice?.('media worker died', { worker: w.index, reason, sockets: ids.length });
    this.emit({ type: 'lost', ids, reason: `media worker ${w.index} died: ${reason}` });
    const now = Date.now();
    w.deaths = w.deaths.filter((t) => now - t < 60_000);
    w.deaths.push(now);
    if (w.deaths.length > MAX_RESPAWNS_PER_MINUTE) {
      this.opts.onNotice?.('media worker not restarted (dies too often)', { worker: w.index });
      return;
    }
    w.generation++;
    this.spawn(w).then(
      () => this.opts.onNotice?.('media worker restarted', { worker: w.index }),
      (e: Error) => this.opts.onNotice?.('media worker not restarted', { worker: w.index, reason: e.message }),
    );
  }

  /**
   * What is posted while the current task runs leaves as one tape per worker at its end (a
   * microtask): a call's opens, plans and closes were a postMessage each, ~1.7 per NG command, and
   * each wakes the worker. A microtask, not a later turn: a plan must reach the worker before the
   * NG reply that announces its ports is sent (a phone may send its first packet right then), and
   * replies go out in a later phase of the event loop (or after this microtask, over TCP).
   * The tape goes into the worker's ring (media/tape-ring.ts), which the worker reads before any
   * datagram, and the worker is woken WAKE_MS later to read it if nothing woke it before (at once
   * when it is asked for pairs or the ring fills); a tape the ring cannot take (objects in it, or
   * no room) is posted, with the ring's position so that the worker keeps the order.
   */
  private post(w: WorkerSlot, m: ToWorker): void {
    if (w.port === null) return;
    writeToWorker(w.outbox, m);
    if (m.op === 'open') w.urgent = true;
    if (this.postsQueued) return;
    this.postsQueued = true;
    queueMicrotask(this.flushPosts);
  }

  private postsQueued = false;

  private readonly flushPosts = (): void => {
    this.postsQueued = false;
    for (const w of this.workers) {
      if (w.outbox.length === 0) continue;
      const tape = w.outbox, urgent = w.urgent;
      w.outbox = [];
      w.urgent = false;
      const port = w.port, ring = w.ring;
      if (port === null || ring === null) continue;
      w.sent++;
      if (w.freeing !== null) { w.unseen.push({ tape: w.sent, freed: w.freeing }); w.freeing = null; }
      if (!ring.write(tape)) {
        tape.push(ring.writePos);
        port.postMessage(tape);
      } else if (urgent || ring.used > ring.capacity / 4) port.postMessage([ring.writePos]);
      else if (w.wakeTimer === null) w.wakeTimer = setTimeout(this.wake, this.opts.wakeMs ?? WAKE_MS, w);
    }
  };

  /** Wakes a worker that has not read its ring since it was written to. */
  private readonly wake = (w: WorkerSlot): void => {
    w.wakeTimer = null;
    if (w.port !== null && w.ring !== null && !w.ring.empty) w.port.postMessage([w.ring.writePos]);
  };

  private receive(w: WorkerSlot, tape: Tape): void {
    readFromWorker(tape, w.handle);
  }

  private emit(ev: PlaneEvent): void {
    for (const l of this.listeners) l(ev);
  }

  /**
   * The worker for a new socket pair: the call's worker, else the live one with most pairs not
   * promised to others. Promises are a guess (a call may never ask for its other side), so the
   * best worker is taken even when every worker is below zero: the open itself says if none is free.
   */
  private choose(address: string, group: string | undefined): WorkerSlot | null {
    if (group !== undefined) {
      const g = this.groups.get(group);
      if (g) { const w = this.workers[g.worker]!; return w.alive ? w : null; }
    }
    let best: WorkerSlot | null = null, bestFree = -Infinity;
    const n = this.workers.length;
    for (let k = 0; k < n; k++) {
      const w = this.workers[(this.rr + k) % n]!;
      if (!w.alive) continue;
      // Pairs a new call can count on: the free and ready ones less those already promised (see
      // promised()). Without that, a range that fits the calls exactly lost some of them to a
      // worker chosen for pairs its other calls then took (8 of 4,000 calls in 8,000 pairs over
      // two workers, 32 offers in flight).
      const free = (w.ports.get(address)?.free ?? w.ports.values().next().value?.total ?? 0) + this.readyCount(w, address)
        - this.promised(w, address);
      if (free > bestFree) { best = w; bestFree = free; }
    }
    this.rr = (this.rr + 1) % n;
    return best;
  }

  /**
   * Pairs of a worker, at an address, that its calls will take: those its waiters wait for, and
   * the other side's pair of a call that holds an odd number (a call opens one side's pair, then
   * the other's, so one pair more is most likely to come). A waiter for a call's first pair counts
   * two. The worker's free count may be stale (opens asked are counted only when answered); the
   * pairs asked meanwhile go to the waiters or the ready list, so free + ready - promised holds.
   */
  private promised(w: WorkerSlot, address: string): number {
    let n = w.halfOpen;
    const waiters = w.waiters.get(address);
    if (waiters) for (const x of waiters) {
      const g = x.group === undefined ? undefined : this.groups.get(x.group);
      // Its own pair, and the other side's when that one leaves the call odd (already counted in halfOpen when odd now).
      n += x.group === undefined ? 1 : g === undefined || oddPairs(g.sockets) === 0 ? 2 : 0;
    }
    return n;
  }

  /**
   * Asks the worker for pairs until READY_PAIRS are ready or on their way, beyond those the
   * waiting openPair() calls will take. Each pair that comes goes to the oldest waiter, else to the
   * ready list; when the last answer outstanding was a failure (no ports left), the waiters fail.
   */
  private refill(w: WorkerSlot, address: string): void {
    if (!w.alive || this.stopping) return;
    const ready = w.ready.get(address)?.length ?? 0;
    const waiting = w.waiters.get(address)?.length ?? 0;
    let asked = w.refilling.get(address) ?? 0;
    if (waiting === 0 && ready + asked > READY_PAIRS / 2) return;
    const gen = w.generation;
    // One answer less to come; false for an earlier life's answer.
    const answered = (): boolean => {
      if (w.generation !== gen) return false;
      w.refilling.set(address, (w.refilling.get(address) ?? 1) - 1);
      return true;
    };
    for (; ready + asked < READY_PAIRS + waiting; asked++) {
      const req = this.nextReq++;
      w.pending.set(req, {
        resolve: (o) => {
          if (!answered()) return;
          const waiter = w.waiters.get(address)?.shift();
          if (waiter !== undefined) { waiter.resolve(this.take(w, o, waiter.group)); return; }
          let list = w.ready.get(address);
          if (!list) { list = []; w.ready.set(address, list); }
          list.push(o);
        },
        // Failures may overtake successes (the worker answers each open when its binds are done),
        // so a waiter fails only once no answer is left to come.
        reject: (e) => {
          if (!answered() || (w.refilling.get(address) ?? 0) > 0) return;
          const waiters = w.waiters.get(address) ?? [];
          w.waiters.delete(address);
          for (const x of waiters) x.reject(e instanceof NoPortsError ? new NoPortsError(address) : e);
        },
      });
      this.post(w, { op: 'open', req, address });
    }
    w.refilling.set(address, asked);
  }

  /** Pairs opened ahead and ready, in all workers, for an address (tests). */
  readyPairs(address: string): number {
    this.drainAll();
    let n = 0;
    for (const w of this.workers) n += this.readyCount(w, address);
    return n;
  }

  /** Ready pairs of a worker for an address (free ports as far as callers are concerned). */
  private readyCount(w: WorkerSlot, address: string): number {
    return w.ready.get(address)?.length ?? 0;
  }

  private take(w: WorkerSlot, o: Opened, group: string | undefined): OpenedPair {
    const { pair, slots } = o;
    this.track(pair.rtp, w, group, 'rtp', pair.address, pair.port, slots[0]);
    this.track(pair.rtcp, w, group, 'rtcp', pair.address, pair.port + 1, slots[1]);
    return pair;
  }

  openPair(address: string, group?: string): Promise<OpenedPair> {
    if (this.stopping) return Promise.reject(new Error('media plane shutting down'));
    const w = this.choose(address, group);
    if (!w) return Promise.reject(new NoPortsError(address));
    const ready = w.ready.get(address)?.shift();
    if (ready !== undefined) {
      this.refill(w, address);
      return Promise.resolve(this.take(w, ready, group));
    }
    // None ready: wait for the next pair the worker opens (one more is asked for on our behalf).
    return new Promise((resolve, reject) => {
      let list = w.waiters.get(address);
      if (!list) { list = []; w.waiters.set(address, list); }
      list.push({ group, resolve, reject });
      this.refill(w, address);
    });
  }

  private track(id: SocketId, w: WorkerSlot, group: string | undefined, kind: 'rtp' | 'rtcp', address: string, port: number, slot: SlotRef): void {
    const chunk = w.chunks[slot.chunk];
    const view = chunk ? chunk.subarray(slot.index * SLOT_FIELDS, (slot.index + 1) * SLOT_FIELDS) : new Float64Array(SLOT_FIELDS);
    this.sockets.set(id, { worker: w.index, group, kind, localAddress: address, localPort: port, view, remote: null, confirmed: false, sdpKey: '' });
    if (group !== undefined) {
      const g = this.groups.get(group);
      if (g) { g.sockets++; w.halfOpen += halfOpenChange(g.sockets - 1, g.sockets); } else this.groups.set(group, { worker: w.index, sockets: 1 });
    }
  }

  private forget(id: SocketId): Mirror | undefined {
    const s = this.sockets.get(id);
    if (!s) return undefined;
    this.sockets.delete(id);
    if (s.group !== undefined) {
      const g = this.groups.get(s.group);
      if (g) {
        this.workers[g.worker]!.halfOpen += halfOpenChange(g.sockets, g.sockets - 1);
        if (--g.sockets <= 0) this.groups.delete(s.group);
      }
    }
    return s;
  }

  install(plans: readonly SocketPlan[]): void {
    const byWorker = new Map<number, SocketPlan[]>();
    for (const p of plans) {
      const s = this.sockets.get(p.id);
      if (!s) continue;
      // The same rule as LocalMediaPlane.install, so stats() right after is right; for a socket
      // whose remote it learned or confirmed, the worker answers with its state, in its own order
      // (an event of ours about it may be older than this install).
      const key = p.remote ? `${p.remote.address} ${p.remote.port}` : '';
      if (key !== s.sdpKey) { s.remote = p.remote ? { ...p.remote } : null; s.confirmed = false; }
      s.sdpKey = key;
      let list = byWorker.get(s.worker);
      if (!list) { list = []; byWorker.set(s.worker, list); }
      list.push(p);
    }
    for (const [w, list] of byWorker) this.post(this.workers[w]!, { op: 'install', plans: list });
  }

  close(ids: readonly SocketId[]): void {
    const byWorker = new Map<number, SocketId[]>();
    for (const id of ids) {
      const s = this.forget(id);
      if (!s) continue;
      const w = this.workers[s.worker]!;
      // The worker frees the pair when the RTCP socket closes; count it now, as the in-process plane
      // does, and until the worker has counted it (setPorts).
      if (s.kind === 'rtcp') {
        const p = w.ports.get(s.localAddress);
        if (p) p.free = Math.min(p.total, p.free + 1);
        const freeing = (w.freeing ??= new Map());
        freeing.set(s.localAddress, (freeing.get(s.localAddress) ?? 0) + 1);
      }
      let list = byWorker.get(s.worker);
      if (!list) { list = []; byWorker.set(s.worker, list); }
      list.push(id);
    }
    for (const [w, list] of byWorker) this.post(this.workers[w]!, { op: 'close', ids: list });
  }

  /** From the shared counters alone: no drain, no objects. */
  latestPacketMs(ids: readonly SocketId[]): number {
    let last = 0;
    for (const id of ids) {
      const s = this.sockets.get(id);
      if (s !== undefined && s.view[C_LAST_MS]! > last) last = s.view[C_LAST_MS]!;
    }
    return last;
  }

  /** stats()' counters alone: drained as stats() is (the same sockets are known), no objects. */
  socketCounters(ids: readonly SocketId[], out: Float64Array): number {
    this.drainAll();
    let known = 0;
    for (let i = 0; i < ids.length; i++) {
      const s = this.sockets.get(ids[i]!);
      if (s === undefined) continue;
      const c = s.view;
      out[3 * i] = c[C_PACKETS]!; out[3 * i + 1] = c[C_BYTES]!; out[3 * i + 2] = c[C_ERRORS]!;
      known++;
    }
    return known;
  }

  stats(ids: readonly SocketId[]): SocketStats[] {
    this.drainAll();
    const out: SocketStats[] = [];
    for (const id of ids) {
      const s = this.sockets.get(id);
      if (!s) continue;
      const c = s.view;
      out.push({
        id, localAddress: s.localAddress, localPort: s.localPort, remote: s.remote, confirmed: s.confirmed,
        packets: c[C_PACKETS]!, bytes: c[C_BYTES]!, errors: c[C_ERRORS]!, dropped: c[C_DROPPED]!,
        lastPacketMs: c[C_LAST_MS]!, ssrc: c[C_SSRC]! < 0 ? null : c[C_SSRC]!,
        quality: s.kind === 'rtp' ? readQuality(c) : null,
        srtpFailures: s.sec?.srtpFailures ?? 0, ice: s.sec?.ice ?? null, dtls: s.sec?.dtls ?? null,
      });
    }
    return out;
  }

  ports(): PortFigures[] {
    this.drainAll();
    const sum = new Map<string, PortFigures>();
    for (const w of this.workers) for (const [address, p] of w.ports) {
      const free = p.free + this.readyCount(w, address);
      const t = sum.get(address);
      if (!t) { sum.set(address, { ...p, free }); continue; }
      t.free += free; t.total += p.total;
      addParking(t, p);
    }
    return [...sum.values()];
  }

  onEvent(listener: (ev: PlaneEvent) => void): void {
    this.listeners.push(listener);
  }

  // Call recording: sent to the worker that owns the call's sockets (its group).
  private groupWorker(group: string): WorkerSlot | null {
    const g = this.groups.get(group);
    const w = g ? this.workers[g.worker]! : null;
    return w?.alive ? w : null;
  }

  startRecording(req: RecordingRequest): void {
    const w = this.groupWorker(req.group);
    if (w) this.post(w, { op: 'rec-start', req });
  }

  updateRecording(group: string, streams: RecordingStream[]): void {
    const w = this.groupWorker(group);
    if (w) this.post(w, { op: 'rec-update', group, streams });
  }

  pauseRecording(group: string): void { const w = this.groupWorker(group); if (w) this.post(w, { op: 'rec-pause', group }); }
  resumeRecording(group: string): void { const w = this.groupWorker(group); if (w) this.post(w, { op: 'rec-resume', group }); }

  stopRecording(group: string): Promise<RecordedFile[]> {
    const w = this.groupWorker(group);
    if (!w) return Promise.resolve([]);
    const req = this.nextReq++;
    const done = new Promise<RecordedFile[]>((resolve) => w.recStops.set(req, resolve));
    this.post(w, { op: 'rec-stop', req, group });
    return done;
  }

  /** Test hook: makes worker `index` throw, as a bug would. */
  crashWorker(index: number): void {
    const w = this.workers[index];
    if (w) this.post(w, { op: 'crash' });
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers.map(async (w) => {
      const worker = w.worker;
      if (!worker) return;
      const req = this.nextReq++;
      const done = new Promise<void>((resolve) => {
        w.pending.set(req, { resolve: () => resolve(), reject: () => resolve() });
        setTimeout(resolve, 2000).unref();
      });
      this.post(w, { op: 'shutdown', req });
      await done;
      w.alive = false;
      await worker.terminate();
    }));
  }
}
