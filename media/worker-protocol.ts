// Messages between WorkerMediaPlane (main thread) and a media worker: plain, structured-cloneable.
// Imports nothing of ours but media/plane.ts types.
import type { Endpoint, OpenedPair, PlaneEvent, RecordedFile, RecordingRequest, RecordingStream, SocketId, SocketPlan } from './plane.js';

export interface WorkerInit {
  index: number;
  count: number;
  /** First socket id; ids step by `count`. */
  idStart: number;
  range: { min: number; max: number };
  addresses: string[];
  /** Socket layer (media/udp.ts). */
  socketIo: 'auto' | 'native' | 'dgram';
}

export interface PortsSnapshot { address: string; free: number; total: number }

export type ToWorker =
  /** Several messages posted in one task of the main thread, in order. */
  | { op: 'batch'; msgs: ToWorker[] }
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

export type FromWorker =
  /** Several messages posted in one event-loop turn of the worker, in order (one postMessage instead of many). */
  | { type: 'batch'; msgs: FromWorker[] }
  | { type: 'ready'; ports: PortsSnapshot[] }
  | { type: 'chunk'; index: number; buffer: SharedArrayBuffer }
  | { type: 'opened'; req: number; pair: OpenedPair; slots: [SlotRef, SlotRef]; ports: PortsSnapshot[] }
  | { type: 'open-failed'; req: number; noPorts: boolean; message: string; ports: PortsSnapshot[] }
  | { type: 'event'; ev: PlaneEvent }
  /** Remote and confirmation after an install, in the worker's order (authoritative). */
  | { type: 'state'; states: { id: SocketId; remote: Endpoint | null; confirmed: boolean }[] }
  | { type: 'ports'; ports: PortsSnapshot[] }
  | { type: 'shutdown-done'; req: number }
  | { type: 'rec-stopped'; req: number; files: RecordedFile[] }
  /** SRTP failures and ICE/DTLS state of the worker's secure sockets, when changed (at most once a second). */
  | { type: 'sec'; states: SecurityState[] };

export interface SecurityState { id: SocketId; srtpFailures: number; ice: 'checking' | 'connected' | 'failed' | null; dtls: 'handshaking' | 'connected' | 'failed' | null }
