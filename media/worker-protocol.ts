// Messages between WorkerMediaPlane (main thread) and a media worker: plain, structured-cloneable,
// and how they travel (a tape, below). Imports nothing of ours but media/plane.ts and media/udp.ts types.
import type { SocketParking } from './udp.js';
import type { Endpoint, OpenedPair, PlaneEvent, PortFigures, RecordedFile, RecordingRequest, RecordingStream, SocketId, SocketPlan } from './plane.js';

export interface WorkerInit {
  index: number;
  count: number;
  /** First socket id; ids step by `count`. */
  idStart: number;
  range: { min: number; max: number };
  addresses: string[];
  /** Socket layer (media/udp.ts). */
  socketIo: 'auto' | 'native' | 'dgram';
  /** Parking of freed ports' sockets (media/udp.ts). */
  socketPark: SocketParking;
}

/** A worker's port figures for an address, as of the tapes it had handled (`seen`). */
export type PortsSnapshot = PortFigures;

export type ToWorker =
  | { op: 'open'; req: number; address: string }
  | { op: 'install'; plans: SocketPlan[] }
  | { op: 'close'; ids: SocketId[] }
  | { op: 'shutdown'; req: number }
  /** Call recording: the recorder lives in the worker that owns the call's sockets. */
  | { op: 'rec-start'; req: RecordingRequest }
  | { op: 'rec-update'; group: string; streams: RecordingStream[] }
  | { op: 'rec-pause'; group: string }
  | { op: 'rec-resume'; group: string }
  | { op: 'rec-stop'; req: number; group: string }
  /** Test hook: throw from the worker's event loop, as a bug would. */
  | { op: 'crash' }
  /** The daemon's DTLS certificate (sent again to a restarted worker). */
  | { op: 'cert'; cert: { certPem: string; keyPem: string } };

export interface SlotRef { chunk: number; index: number }

// Messages with a ports snapshot carry `seen`: how many tapes from the main thread the worker had
// handled when it counted (the main thread adds the pairs freed by the closes it sent after those).
export type FromWorker =
  | { type: 'ready'; ports: PortsSnapshot[]; seen: number }
  | { type: 'chunk'; index: number; buffer: SharedArrayBuffer }
  | { type: 'opened'; req: number; pair: OpenedPair; slots: [SlotRef, SlotRef]; ports: PortsSnapshot[]; seen: number }
  | { type: 'open-failed'; req: number; noPorts: boolean; message: string; ports: PortsSnapshot[]; seen: number }
  | { type: 'event'; ev: PlaneEvent }
  /** Remote and confirmation after an install, in the worker's order (authoritative). */
  | { type: 'state'; states: { id: SocketId; remote: Endpoint | null; confirmed: boolean }[] }
  | { type: 'ports'; ports: PortsSnapshot[]; seen: number }
  | { type: 'shutdown-done'; req: number }
  | { type: 'rec-stopped'; req: number; files: RecordedFile[] }
  /** SRTP failures and ICE/DTLS state of the worker's secure sockets, when changed (at most once a second). */
  | { type: 'sec'; states: SecurityState[] };

export interface SecurityState { id: SocketId; srtpFailures: number; ice: 'checking' | 'connected' | 'failed' | null; dtls: 'handshaking' | 'connected' | 'failed' | null }

// ---- The tape: what one postMessage (or one record of media/tape-ring.ts) carries --------
//
// Each side sends what it has to say in one task or event-loop turn as one message: a flat array
// (a "tape") of the messages in order. Structured clone copies an object property by property,
// names and all; the messages an NG command causes (an offer's or answer's four socket plans, its
// opens, a delete's closes, and the worker's answers) cost the main thread ~4.5 us a post as
// objects and ~1.2 us as the same numbers and strings in one flat array (node 20, this 2-core VM,
// 100,000 posts of an answer's batch; in the daemon the posting and reading were ~18 % of the main
// thread under ngload). So the frequent messages are written flat (a code, then their fields in a
// fixed order) and the rest go as the objects they are, behind T_OBJECT / F_OBJECT. A plan with
// SRTP, ICE or BUNDLE goes as its object too: those come with DTLS and ICE work that dwarfs it.

/** One message's worth of messages, flat. */
export type Tape = unknown[];

const T_OBJECT = 0, T_OPEN = 1, T_CLOSE = 2, T_INSTALL = 3;
const F_OBJECT = 0, F_OPENED = 1, F_STATE = 2, F_PORTS = 3;
const PLAN_OBJECT = 0, PLAN_FLAT = 1;
// A flat plan's booleans, and which optional fields it has (so it reads back as it was written).
const RTP = 1, FORWARD = 2, ASYMMETRIC = 4, STRICT_SOURCE = 8, MEDIA_HANDOVER = 16, RTCP_MUX = 32,
  HAS_FEEDBACK = 64, FEEDBACK = 128, HAS_GENERATE = 256, GENERATE = 512,
  NULL_CRYPTO = 1024, NULL_ICE = 2048, NULL_BUNDLE = 4096;
/** A flat plan's clockRates length when it is null, or absent. */
const RATES_NULL = -1, RATES_ABSENT = -2;

/** Appends `m` to the tape for the worker. */
export function writeToWorker(t: Tape, m: ToWorker): void {
  switch (m.op) {
    case 'open': t.push(T_OPEN, m.req, m.address); return;
    case 'close': {
      t.push(T_CLOSE, m.ids.length);
      for (let i = 0; i < m.ids.length; i++) t.push(m.ids[i]);
      return;
    }
    case 'install': {
      t.push(T_INSTALL, m.plans.length);
      for (let i = 0; i < m.plans.length; i++) writePlan(t, m.plans[i]!);
      return;
    }
    default: t.push(T_OBJECT, m);
  }
}

/** Calls `each` with the tape's messages for the worker, in order. */
export function readToWorker(t: Tape, each: (m: ToWorker) => void): void {
  const r = { t, i: 0 };
  while (r.i < t.length) {
    const code = t[r.i++];
    switch (code) {
      case T_OPEN: each({ op: 'open', req: t[r.i] as number, address: t[r.i + 1] as string }); r.i += 2; break;
      case T_CLOSE: {
        const n = t[r.i++] as number;
        each({ op: 'close', ids: t.slice(r.i, r.i + n) as SocketId[] });
        r.i += n;
        break;
      }
      case T_INSTALL: {
        const n = t[r.i++] as number;
        const plans: SocketPlan[] = [];
        for (let k = 0; k < n; k++) plans.push(readPlan(r));
        each({ op: 'install', plans });
        break;
      }
      case T_OBJECT: each(t[r.i++] as ToWorker); break;
      default: throw new Error(`media worker tape: unknown code ${String(code)} at ${r.i - 1}`);
    }
  }
}

function writePlan(t: Tape, p: SocketPlan): void {
  if (p.crypto || p.ice || p.bundle) { t.push(PLAN_OBJECT, p); return; }
  let flags = (p.kind === 'rtp' ? RTP : 0) | (p.forward ? FORWARD : 0) | (p.asymmetric ? ASYMMETRIC : 0)
    | (p.strictSource ? STRICT_SOURCE : 0) | (p.mediaHandover ? MEDIA_HANDOVER : 0) | (p.rtcpMux ? RTCP_MUX : 0);
  if (p.rtcpFeedback !== undefined) flags |= HAS_FEEDBACK | (p.rtcpFeedback ? FEEDBACK : 0);
  if (p.generateRtcp !== undefined) flags |= HAS_GENERATE | (p.generateRtcp ? GENERATE : 0);
  if (p.crypto === null) flags |= NULL_CRYPTO;
  if (p.ice === null) flags |= NULL_ICE;
  if (p.bundle === null) flags |= NULL_BUNDLE;
  t.push(PLAN_FLAT, p.id, flags, p.remote?.address ?? null, p.remote?.port ?? 0, p.sink ?? -1, p.rtcpSink ?? -1, p.payloadTypes.length);
  for (let i = 0; i < p.payloadTypes.length; i++) t.push(p.payloadTypes[i]);
  const rates = p.clockRates;
  if (rates === undefined) t.push(RATES_ABSENT);
  else if (rates === null) t.push(RATES_NULL);
  else {
    t.push(rates.length);
    for (let i = 0; i < rates.length; i++) t.push(rates[i]);
  }
}

function readPlan(r: { t: Tape; i: number }): SocketPlan {
  const t = r.t;
  if (t[r.i++] === PLAN_OBJECT) return t[r.i++] as SocketPlan;
  const id = t[r.i] as number, flags = t[r.i + 1] as number, address = t[r.i + 2] as string | null, port = t[r.i + 3] as number;
  const sink = t[r.i + 4] as number, rtcpSink = t[r.i + 5] as number, nPt = t[r.i + 6] as number;
  r.i += 7;
  const payloadTypes = t.slice(r.i, r.i + nPt) as number[];
  r.i += nPt;
  const p: SocketPlan = {
    id, kind: flags & RTP ? 'rtp' : 'rtcp', remote: address === null ? null : { address, port },
    sink: sink < 0 ? null : sink, forward: (flags & FORWARD) !== 0, asymmetric: (flags & ASYMMETRIC) !== 0,
    strictSource: (flags & STRICT_SOURCE) !== 0, mediaHandover: (flags & MEDIA_HANDOVER) !== 0,
    payloadTypes, rtcpMux: (flags & RTCP_MUX) !== 0, rtcpSink: rtcpSink < 0 ? null : rtcpSink,
  };
  if (flags & HAS_FEEDBACK) p.rtcpFeedback = (flags & FEEDBACK) !== 0;
  if (flags & HAS_GENERATE) p.generateRtcp = (flags & GENERATE) !== 0;
  if (flags & NULL_CRYPTO) p.crypto = null;
  if (flags & NULL_ICE) p.ice = null;
  if (flags & NULL_BUNDLE) p.bundle = null;
  const nRates = t[r.i++] as number;
  if (nRates === RATES_NULL) p.clockRates = null;
  else if (nRates >= 0) {
    p.clockRates = t.slice(r.i, r.i + nRates) as number[];
    r.i += nRates;
  }
  return p;
}

/** Appends `m` to the tape for the main thread. */
export function writeFromWorker(t: Tape, m: FromWorker): void {
  switch (m.type) {
    case 'opened': {
      const { pair, slots } = m;
      t.push(F_OPENED, m.req, pair.rtp, pair.rtcp, pair.address, pair.port, slots[0].chunk, slots[0].index, slots[1].chunk, slots[1].index, m.seen);
      writePorts(t, m.ports);
      return;
    }
    case 'state': {
      t.push(F_STATE, m.states.length);
      for (const s of m.states) t.push(s.id, s.remote?.address ?? null, s.remote?.port ?? 0, s.confirmed ? 1 : 0);
      return;
    }
    case 'ports': t.push(F_PORTS, m.seen); writePorts(t, m.ports); return;
    default: t.push(F_OBJECT, m);
  }
}

function writePorts(t: Tape, ports: PortsSnapshot[]): void {
  t.push(ports.length);
  // Parking figures as -1 where there are none (a socket layer that does not park).
  for (const p of ports) t.push(p.address, p.free, p.total, p.parked ?? -1, p.reused ?? -1, p.parkedDrops ?? -1);
}

function readPorts(r: { t: Tape; i: number }): PortsSnapshot[] {
  const t = r.t, n = t[r.i++] as number, out: PortsSnapshot[] = [];
  for (let k = 0; k < n; k++, r.i += 6) {
    const p: PortsSnapshot = { address: t[r.i] as string, free: t[r.i + 1] as number, total: t[r.i + 2] as number };
    if ((t[r.i + 3] as number) >= 0) { p.parked = t[r.i + 3] as number; p.reused = t[r.i + 4] as number; p.parkedDrops = t[r.i + 5] as number; }
    out.push(p);
  }
  return out;
}

/** Calls `each` with the tape's messages for the main thread, in order. */
export function readFromWorker(t: Tape, each: (m: FromWorker) => void): void {
  const r = { t, i: 0 };
  while (r.i < t.length) {
    const code = t[r.i++];
    switch (code) {
      case F_OPENED: {
        const i = r.i;
        const pair: OpenedPair = { rtp: t[i + 1] as number, rtcp: t[i + 2] as number, address: t[i + 3] as string, port: t[i + 4] as number };
        const slots: [SlotRef, SlotRef] = [{ chunk: t[i + 5] as number, index: t[i + 6] as number }, { chunk: t[i + 7] as number, index: t[i + 8] as number }];
        const seen = t[i + 9] as number;
        r.i += 10;
        each({ type: 'opened', req: t[i] as number, pair, slots, ports: readPorts(r), seen });
        break;
      }
      case F_STATE: {
        const n = t[r.i++] as number;
        const states: { id: SocketId; remote: Endpoint | null; confirmed: boolean }[] = [];
        for (let k = 0; k < n; k++, r.i += 4) {
          const address = t[r.i + 1] as string | null;
          states.push({ id: t[r.i] as number, remote: address === null ? null : { address, port: t[r.i + 2] as number }, confirmed: t[r.i + 3] === 1 });
        }
        each({ type: 'state', states });
        break;
      }
      case F_PORTS: { const seen = t[r.i++] as number; each({ type: 'ports', ports: readPorts(r), seen }); break; }
      case F_OBJECT: each(t[r.i++] as FromWorker); break;
      default: throw new Error(`media worker tape: unknown code ${String(code)} at ${r.i - 1}`);
    }
  }
}
