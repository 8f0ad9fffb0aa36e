// The media plane's recordings: one CallRecorder per group (call), attached to the sockets it
// records so the packet path feeds it with one field read. Lives wherever the call's sockets
// live (the main thread, or the call's media worker). Imports only media/.
import { mkdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { CallRecorder, type RecordedStream } from './recording/recorder.js';
import type { Endpoint, PlaneEvent, RecordedFile, RecordingRequest, RecordingStream, SocketId } from './plane.js';

/** What the hub needs of the plane: attach a recorder to a socket, and a socket's learned remote. */
export interface RecordingHost {
  attach(id: SocketId, rec: CallRecorder | null): boolean;
  remoteOf(id: SocketId): Endpoint | null;
  emit(ev: PlaneEvent): void;
}

interface Entry { rec: CallRecorder; ids: Set<SocketId>; streams: Map<SocketId, RecordingStream> }

/** Unix ms with sub-ms resolution; one clock for the pcap timestamps and the WAV timeline. */
export const recordingNow = (): number => performance.timeOrigin + performance.now();

export class RecordingHub {
  private readonly groups = new Map<string, Entry>();
  /** Directories made (or found) already: later recordings there start at once. */
  private readonly readyDirs = new Set<string>();
  /** Recordings that stopped on a file error (full disk, unwritable directory). */
  failures = 0;

  constructor(private readonly host: RecordingHost) {}

  get active(): number { return this.groups.size; }

  start(req: RecordingRequest): void {
    if (this.groups.has(req.group)) { this.update(req.group, req.streams); this.resume(req.group); return; }
    let entry: Entry | null = null;
    const rec = new CallRecorder({
      dir: req.dir, stem: req.stem, callId: req.callId, metadata: req.metadata, now: recordingNow,
      onError: (err) => {
        this.failures++;
        // The call goes on: detach so the packet path stops copying, report once.
        if (entry) for (const id of entry.ids) this.host.attach(id, null);
        this.host.emit({ type: 'recording-failed', group: req.group, error: err.message });
      },
    });
    entry = { rec, ids: new Set(), streams: new Map() };
    this.groups.set(req.group, entry);
    if (!this.readyDirs.has(req.dir)) {
      // Once per directory in the process's life (a control message, never the packet path), so
      // that the recording starts with the command: the first packets after it are in the files.
      // A failure shows as the files' open error (reported once, the call goes on).
      try { mkdirSync(req.dir, { recursive: true }); this.readyDirs.add(req.dir); } catch { /* reported by the recorder */ }
    }
    rec.start();
    this.setStreams(entry, req.streams);
  }

  update(group: string, streams: RecordingStream[]): void {
    const e = this.groups.get(group);
    if (e) this.setStreams(e, streams);
  }

  private setStreams(e: Entry, streams: RecordingStream[]): void {
    for (const s of streams) {
      e.streams.set(s.id, s);
      e.rec.setStream(s.id, this.info(s));
      e.ids.add(s.id);
      if (e.rec.state === 'recording' || e.rec.state === 'paused') this.host.attach(s.id, e.rec);
    }
  }

  private info(s: RecordingStream): RecordedStream {
    const src = this.host.remoteOf(s.id) ?? s.src ?? { address: isIP(s.dst.address) === 6 ? '::' : '0.0.0.0', port: 0 };
    return { tag: s.tag, kind: s.kind, src, dst: s.dst, codecs: s.codecs };
  }

  /** A socket learned its party's address: the pcap shows packets from there from now on. */
  learned(id: SocketId): void {
    for (const e of this.groups.values()) {
      const s = e.streams.get(id);
      if (s) e.rec.setStream(id, this.info(s));
    }
  }

  pause(group: string): void { this.groups.get(group)?.rec.pause(); }
  resume(group: string): void { this.groups.get(group)?.rec.resume(); }

  async stop(group: string): Promise<RecordedFile[]> {
    const e = this.groups.get(group);
    if (!e) return [];
    this.groups.delete(group);
    for (const id of e.ids) this.host.attach(id, null);
    return e.rec.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.groups.keys()].map((g) => this.stop(g)));
  }
}
