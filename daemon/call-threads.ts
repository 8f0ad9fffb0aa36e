// The session core spread over call threads (--call-threads): each thread holds the calls whose
// call-id hashes to it, with their media sockets on its own slice of the port range, and answers
// their NG commands itself (daemon/call-thread.ts). The main thread keeps the NG sockets, routes
// each command by call-id (over UDP natively, media/native/ng-route.c; else control/ng-server.ts's
// Forwarder), answers ping/list/statistics, and runs operations and admin against this class as
// against any SessionCore. What crosses between
// threads is plain data: NG messages and replies as bytes, call records, figures.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Forwarder, RoutedReply } from '../control/ng-server.js';
import { addReplyCacheFigures, type ReplyCacheFigures } from '../control/reply-cache.js';
import { sliceRange } from '../media/worker-plane.js';
import { ChurnMap } from '../media/churn-map.js';
import { addParking } from '../media/plane.js';
import type { SocketParking } from '../media/udp.js';
import type { CallSnapshot, DeleteResult, RecordingDone, SessionConfig, TableTotals } from './session/call-table.js';
import type { CallRecord, MediaTotals, PortUsage, SessionCore } from './session/core.js';
import { SessionError, type SessionErrorCode } from './session/errors.js';
import type { DeleteOptions, QueryOptions } from './session/model.js';

export interface CallThreadInit {
  index: number;
  range: { min: number; max: number };
  addresses: string[];
  socketIo: 'auto' | 'native' | 'dgram';
  socketPark: SocketParking;
  /** The session configuration as plain data (the DTLS fingerprints come as `cert`). */
  session: Omit<SessionConfig, 'fingerprint'>;
  log: { level: string; stderr: boolean };
  accepting: boolean;
  cert: ThreadCert | null;
  startedMs: number;
  /** The main thread's routed NG sockets (media/udp.ts NgRouting): the thread answers what comes from them. */
  ng: NgHandover[];
}

/** A routed NG socket as a call thread adopts it. */
export interface NgHandover { fd: number; v6: boolean }

export interface ThreadCert { certPem: string; keyPem: string; fingerprints: Record<string, string> }

/** A thread's figures, sent once a second and when asked. */
export interface ThreadView { totals: TableTotals; media: MediaTotals; ports: PortUsage[]; recordingFailures: number; replyCache: ReplyCacheFigures }

export type ThreadRequest =
  | { what: 'view' }
  | { what: 'accepting'; value: boolean }
  | { what: 'list'; limit: number }
  | { what: 'query'; opts: QueryOptions }
  | { what: 'delete'; opts: DeleteOptions }
  | { what: 'destroyAll'; reason: string }
  | { what: 'stop' };

export type ToThread =
  /** NG messages: id, message bytes, source, repeated. */
  | { op: 'ng'; items: (number | Uint8Array | string)[] }
  | { op: 'cert'; cert: ThreadCert }
  /** Serve the commands the main thread's native reader hands this thread from these NG sockets. */
  | { op: 'ng-sockets'; ng: NgHandover[] }
  | { op: 'req'; id: number; req: ThreadRequest }
  | { op: 'crash' };

/** Everything a thread says in one event-loop turn, as one message. */
export interface FromThread {
  ready?: true;
  /** id, reply bytes, flags (1 cached, 2 error), repeated; a null reply: no answer (no cookie). */
  replies?: (number | Uint8Array | null)[];
  records?: CallRecord[];
  recordings?: RecordingDone[];
  res?: { id: number; value?: unknown; error?: { code: SessionErrorCode | null; message: string } }[];
  view?: ThreadView;
  /** The thread's call counts, when this turn changed them. */
  totals?: TableTotals;
  /** Commands answered from handed-over datagrams: command (null: none known), source, error (0/1), us; repeated. */
  counts?: (string | number | null)[];
}

export const REPLY_CACHED = 1;
export const REPLY_ERROR = 2;

interface Slot {
  index: number;
  range: { min: number; max: number };
  worker: Worker | null;
  port: MessagePort | null;
  ready: boolean;
  /** NG messages waiting for the next post (one per turn), or for the thread to be ready. */
  outbox: (number | Uint8Array | string)[];
  view: ThreadView | null;
  deaths: number[];
  failure: string | null;
}

interface PendingNg { slot: number; resolve: (r: RoutedReply) => void; reject: (e: Error) => void }
interface PendingReq { slot: number; resolve: (v: unknown) => void; reject: (e: Error) => void }

export interface CallThreadsOptions {
  range: { min: number; max: number };
  count: number;
  addresses: readonly string[];
  socketIo: 'auto' | 'native' | 'dgram';
  /** Each thread's parking of freed ports' sockets (media/udp.ts). */
  socketPark: SocketParking;
  session: Omit<SessionConfig, 'fingerprint'>;
  log: { level: string; stderr: boolean };
  /** One line when a thread dies or is restarted (this class does not log). */
  onNotice: (msg: string, fields: Record<string, unknown>) => void;
}

/** A thread that dies more often than this per minute stays dead (crash loop). */
const MAX_RESPAWNS_PER_MINUTE = 5;
const EMPTY_TOTALS: TableTotals = { callsCreated: 0, callsEnded: {}, current: 0, deleting: 0 };

/** FNV-1a over the call-id's UTF-16 units: the same call-id always lands on the same thread. */
export function threadOf(callId: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < callId.length; i++) {
    h ^= callId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % count;
}

/**
 * The bytes of `b` in an ArrayBuffer of their own: a posted view would carry its whole backing
 * store (a small Buffer sits in Node's shared 8 KiB pool).
 */
export function exactBytes(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}

export class CallThreads implements SessionCore, Forwarder {
  private readonly slots: Slot[];
  private readonly ngPending = new ChurnMap<number, PendingNg>(true);
  private readonly reqPending = new ChurnMap<number, PendingReq>(true);
  private nextId = 1;
  private flushQueued = false;
  private accepting = true;
  private cert: ThreadCert | null = null;
  private stopping = false;
  private readonly recordListeners: ((r: CallRecord) => void)[] = [];
  private readonly recordingListeners: ((r: RecordingDone) => void)[] = [];
  private readonly countListeners: ((command: string | null, source: string, error: boolean, us: number) => void)[] = [];
  private ngSockets: NgHandover[] = [];
  /** Calls lost with threads that died, by reason (counted in totals). */
  private lostCalls = 0;
  private readonly startedMs = Date.now();

  private constructor(private readonly opts: CallThreadsOptions) {
    this.slots = sliceRange(opts.range, opts.count).map((range, index) => ({
      index, range, worker: null, port: null, ready: false, outbox: [], view: null, deaths: [], failure: null,
    }));
  }

  /** Starts the threads (at most one per port pair) and resolves when all are ready. */
  static async start(opts: CallThreadsOptions): Promise<CallThreads> {
    const first = opts.range.min % 2 === 0 ? opts.range.min : opts.range.min + 1;
    const pairs = Math.max(1, Math.floor((opts.range.max - first + 1) / 2));
    const t = new CallThreads({ ...opts, count: Math.max(1, Math.min(opts.count, pairs)) });
    await Promise.all(t.slots.map((s) => t.spawn(s)));
    return t;
  }

  get threadCount(): number { return this.slots.length; }

  private spawn(s: Slot): Promise<void> {
    const init: CallThreadInit = {
      index: s.index, range: s.range, addresses: [...this.opts.addresses], socketIo: this.opts.socketIo, socketPark: this.opts.socketPark,
      session: this.opts.session, log: this.opts.log, accepting: this.accepting, cert: this.cert, startedMs: this.startedMs,
      ng: this.ngSockets,
    };
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL('./call-thread.js', import.meta.url), {
      workerData: { init, port: port2 }, transferList: [port2], name: `calls-${s.index}`,
    });
    s.worker = worker;
    s.port = port1;
    s.ready = false;
    s.failure = null;
    return new Promise((resolve, reject) => {
      let started = false;
      port1.on('message', (m: FromThread) => {
        if (m.ready) {
          started = true;
          s.ready = true;
          if (s.outbox.length) this.queueFlush();
          resolve();
        }
        this.receive(s, m);
      });
      worker.on('error', (err) => { s.failure = err.message; });
      worker.on('exit', (code) => {
        if (s.worker !== worker) return;
        s.ready = false;
        s.worker = null;
        port1.close();
        s.port = null;
        if (!started) { reject(new Error(`call thread ${s.index} did not start: ${s.failure ?? `exit ${code}`}`)); return; }
        this.onDeath(s, code);
      });
    });
  }

  private onDeath(s: Slot, code: number): void {
    const err = new Error(`call thread ${s.index} died`);
    for (const [id, p] of this.ngPending) if (p.slot === s.index) { this.ngPending.delete(id); p.reject(err); }
    for (const [id, p] of this.reqPending) if (p.slot === s.index) { this.reqPending.delete(id); p.reject(err); }
    s.outbox.length = 0;
    if (this.stopping) return;
    const t = s.view?.totals ?? EMPTY_TOTALS;
    const lost = t.current;
    this.lostCalls += lost;
    // The view goes with the thread; what it counted before stays in the totals.
    this.retired.push(s.view);
    s.view = null;
    const now = Date.now();
    s.deaths = s.deaths.filter((t0) => now - t0 < 60_000);
    s.deaths.push(now);
    this.opts.onNotice('call thread died', { thread: s.index, exitCode: code, reason: s.failure, callsLost: lost });
    if (s.deaths.length > MAX_RESPAWNS_PER_MINUTE) {
      this.opts.onNotice('call thread not restarted (crash loop)', { thread: s.index, deathsPerMinute: s.deaths.length });
      return;
    }
    this.spawn(s).then(
      () => this.opts.onNotice('call thread restarted', { thread: s.index }),
      (e: Error) => this.opts.onNotice('call thread restart failed', { thread: s.index, reason: e.message }),
    );
  }

  /** Views of threads that died (their counts of created and ended calls stay in the totals). */
  private readonly retired: (ThreadView | null)[] = [];

  private receive(s: Slot, m: FromThread): void {
    if (m.view) s.view = m.view;
    if (m.totals && s.view) s.view.totals = m.totals;
    const r = m.replies;
    if (r) {
      for (let i = 0; i < r.length; i += 3) {
        const id = r[i] as number;
        const p = this.ngPending.get(id);
        if (!p) continue;
        this.ngPending.delete(id);
        const bytes = r[i + 1] as Uint8Array | null;
        const flags = r[i + 2] as number;
        if (bytes === null) { p.reject(new Error('no reply')); continue; }
        p.resolve({ reply: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), cached: (flags & REPLY_CACHED) !== 0, error: (flags & REPLY_ERROR) !== 0 });
      }
    }
    const c = m.counts;
    if (c) {
      for (let i = 0; i < c.length; i += 4) {
        for (const l of this.countListeners) l(c[i] as string | null, c[i + 1] as string, c[i + 2] === 1, c[i + 3] as number);
      }
    }
    if (m.records) for (const rec of m.records) for (const l of this.recordListeners) l(rec);
    if (m.recordings) for (const rec of m.recordings) for (const l of this.recordingListeners) l(rec);
    if (m.res) {
      for (const res of m.res) {
        const p = this.reqPending.get(res.id);
        if (!p) continue;
        this.reqPending.delete(res.id);
        if (res.error) p.reject(res.error.code ? new SessionError(res.error.code, res.error.message) : new Error(res.error.message));
        else p.resolve(res.value);
      }
    }
  }

  // ---- NG routing (Forwarder) ----

  send(callId: string, msg: Buffer, source: string): Promise<RoutedReply> {
    const s = this.slots[threadOf(callId, this.slots.length)]!;
    if (s.worker === null) return Promise.reject(new Error(`call thread ${s.index} is down`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.ngPending.set(id, { slot: s.index, resolve, reject });
      s.outbox.push(id, exactBytes(msg), source);
      this.queueFlush();
    });
  }

  /** What was routed in this turn (a whole batch of datagrams) leaves as one message per thread. */
  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flush);
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    for (const s of this.slots) {
      if (!s.ready || s.outbox.length === 0) continue;
      const items = s.outbox;
      s.outbox = [];
      s.port!.postMessage({ op: 'ng', items } satisfies ToThread);
    }
  };

  // ---- requests ----

  private request<T>(s: Slot, req: ThreadRequest): Promise<T> {
    if (s.port === null || !s.ready) return Promise.reject(new Error(`call thread ${s.index} is down`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.reqPending.set(id, { slot: s.index, resolve: resolve as (v: unknown) => void, reject });
      s.port!.postMessage({ op: 'req', id, req } satisfies ToThread);
    });
  }

  private live(): Slot[] { return this.slots.filter((s) => s.ready); }

  private slotOf(callId: string): Slot { return this.slots[threadOf(callId, this.slots.length)]!; }

  // ---- SessionCore ----

  get acceptingNewCalls(): boolean { return this.accepting; }
  set acceptingNewCalls(v: boolean) {
    this.accepting = v;
    // Until every thread has it, a call may still start there: the counts are not settled.
    for (const s of this.live()) {
      this.settling++;
      this.request<ThreadView>(s, { what: 'accepting', value: v }).then((view) => { s.view = view; this.settling--; }, () => { this.settling--; });
    }
  }

  private settling = 0;

  /** False while a change of acceptingNewCalls is on its way to the threads (a drain is not yet drained). */
  settled(): boolean { return this.settling === 0; }

  get recordingFailures(): number {
    let n = 0;
    for (const v of this.views()) n += v.recordingFailures;
    return n;
  }

  private views(): ThreadView[] {
    const out: ThreadView[] = [];
    for (const s of this.slots) if (s.view) out.push(s.view);
    return out;
  }

  totals(): TableTotals {
    const out: TableTotals = { callsCreated: 0, callsEnded: {}, current: 0, deleting: 0 };
    const add = (t: TableTotals, live: boolean): void => {
      out.callsCreated += t.callsCreated;
      for (const [k, n] of Object.entries(t.callsEnded)) out.callsEnded[k] = (out.callsEnded[k] ?? 0) + n;
      if (live) { out.current += t.current; out.deleting += t.deleting; }
    };
    for (const v of this.views()) add(v.totals, true);
    for (const v of this.retired) if (v) add(v.totals, false);
    if (this.lostCalls) out.callsEnded['thread-failure'] = (out.callsEnded['thread-failure'] ?? 0) + this.lostCalls;
    return out;
  }

  mediaTotals(): MediaTotals {
    const out: MediaTotals = { rtp: { packets: 0, bytes: 0, errors: 0 }, rtcp: { packets: 0, bytes: 0, errors: 0 }, streams: 0 };
    for (const v of this.views()) {
      const m = v.media;
      out.rtp.packets += m.rtp.packets; out.rtp.bytes += m.rtp.bytes; out.rtp.errors += m.rtp.errors;
      out.rtcp.packets += m.rtcp.packets; out.rtcp.bytes += m.rtcp.bytes; out.rtcp.errors += m.rtcp.errors;
      out.streams += m.streams;
    }
    return out;
  }

  /** Each address's pairs over all threads' slices. */
  ports(): PortUsage[] {
    const by = new Map<string, PortUsage>();
    for (const v of this.views()) {
      for (const p of v.ports) {
        const a = by.get(p.address);
        if (!a) { by.set(p.address, { ...p }); continue; }
        a.free += p.free; a.total += p.total;
        addParking(a, p);
        if (p.min !== undefined) a.min = a.min === undefined ? p.min : Math.min(a.min, p.min);
        if (p.max !== undefined) a.max = a.max === undefined ? p.max : Math.max(a.max, p.max);
      }
    }
    return [...by.values()];
  }

  /** The threads' reply caches together (each answers and caches its own calls' commands). */
  replyCacheFigures(): ReplyCacheFigures {
    const out: ReplyCacheFigures = { entries: 0, bytes: 0, reserveBytes: 0 };
    for (const v of this.views()) addReplyCacheFigures(out, v.replyCache);
    return out;
  }

  async refresh(): Promise<void> {
    await Promise.all(this.live().map(async (s) => {
      try { s.view = await this.request<ThreadView>(s, { what: 'view' }); } catch { /* died meanwhile: its view went with it */ }
    }));
  }

  async list(limit: number): Promise<string[]> {
    const parts = await Promise.all(this.live().map((s) => this.request<string[]>(s, { what: 'list', limit }).catch(() => [] as string[])));
    return parts.flat().slice(0, limit);
  }

  query(opts: QueryOptions): Promise<CallSnapshot> {
    return this.request<CallSnapshot>(this.slotOf(opts.callId), { what: 'query', opts });
  }

  delete(opts: DeleteOptions): Promise<DeleteResult> {
    return this.request<DeleteResult>(this.slotOf(opts.callId), { what: 'delete', opts });
  }

  onCallRecord(listener: (r: CallRecord) => void): void { this.recordListeners.push(listener); }
  onRecordingDone(listener: (r: RecordingDone) => void): void { this.recordingListeners.push(listener); }

  async destroyAll(reason: string): Promise<void> {
    await Promise.all(this.live().map((s) => this.request(s, { what: 'destroyAll', reason }).catch(() => undefined)));
  }

  /** The DTLS certificate, for every thread (and each restarted one). */
  setCertificate(cert: ThreadCert): void {
    this.cert = cert;
    for (const s of this.slots) s.port?.postMessage({ op: 'cert', cert } satisfies ToThread);
  }

  /**
   * The NG sockets whose commands the main thread's native reader hands to the threads: each thread
   * (and each restarted one) answers on them itself and counts back through onNgCount.
   */
  handOverNg(ng: NgHandover[]): void {
    this.ngSockets = ng;
    for (const s of this.slots) s.port?.postMessage({ op: 'ng-sockets', ng } satisfies ToThread);
  }

  onNgCount(listener: (command: string | null, source: string, error: boolean, us: number) => void): void {
    this.countListeners.push(listener);
  }

  /** Test hook: makes thread `index` throw, as a bug would. */
  crashThread(index: number): void {
    this.slots[index]?.port?.postMessage({ op: 'crash' } satisfies ToThread);
  }

  /** Stops every thread once its sockets are closed. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map(async (s) => {
      const worker = s.worker;
      if (!worker) return;
      const exited = new Promise<void>((r) => worker.once('exit', () => r()));
      // Its calls end and its sockets close in the thread; then it is stopped (its native sockets'
      // cleanup hook runs as it ends).
      const stop = this.request(s, { what: 'stop' }).catch(() => undefined);
      await Promise.race([stop, new Promise((r) => setTimeout(r, 2000).unref())]);
      void worker.terminate();
      await exited;
    }));
  }
}
