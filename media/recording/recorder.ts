// One call's recording: a pcap of all its streams, a WAV per party plus a mix (G.711), and a
// metadata JSON. The packet path only copies datagrams into a queue; files are written later,
// in the background, and a failing disk ends the recording (reported once), never the call.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FileSink } from './file-sink.js';
import { PcapWriter, pcapFlow, type Endpoint, type PcapFlow } from './pcap.js';
import { AudioMixer, SAMPLE_RATE, StreamAudio, WavWriter, codecTable } from './wav.js';

export type { Endpoint } from './pcap.js';

/** What the session knows about one stream; `setStream` again when it changes (a learned address). */
export interface RecordedStream {
  /** The party that sends on this stream (its from-tag or to-tag). */
  tag: string;
  kind: 'rtp' | 'rtcp';
  /** The party's address, and our socket's, as the packets travelled. */
  src: Endpoint;
  dst: Endpoint;
  /** Payload type → encoding from the SDP: { 0: 'PCMU/8000', 101: 'telephone-event/8000' }. */
  codecs: Readonly<Record<number, string>>;
}

export interface RecorderOptions {
  dir: string;
  /** File name stem, already safe (see `fileStem`). */
  stem: string;
  callId: string;
  /** The NG `metadata` string, stored as it is. */
  metadata?: string;
  pcap?: boolean;
  audio?: boolean;
  /** Called at most once, when the recording stops on an error. */
  onError: (err: Error) => void;
  /** Unix ms; the packet path's `arrivalMs` must be on this clock. */
  now?: () => number;
}

export interface RecordedFile { path: string; bytes: number; kind: 'pcap' | 'wav' | 'mix' | 'metadata'; tag?: string }

/** Queued bytes past this are dropped and counted: the relay must not wait for a slow disk. */
const MAX_QUEUED_BYTES = 8 << 20;
const ARENA = 256 << 10;
/** Per record: stream id u32, kind u8, epoch u8, length u16, arrival f64, timeline f64. */
const REC_HEADER = 24;
/** Files are fed this often while packets come in: one timer per batch, never per packet. */
const DRAIN_MS = 200;

/** A file name stem from a call-id (peer input): safe characters, bounded, unique per call and time. */
export function fileStem(callId: string, startMs: number): string {
  const safe = callId.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_').slice(0, 48);
  const hash = createHash('sha256').update(callId).digest('hex').slice(0, 8);
  return `${new Date(startMs).toISOString().replace(/[:.]/g, '-')}-${safe}-${hash}`;
}

interface StreamState {
  info: RecordedStream;
  flow: PcapFlow;
  audio: StreamAudio | null;
  epoch: number;
  packets: number;
}

interface Party { tag: string; index: number; writer: WavWriter; path: string }

export class CallRecorder {
  state: 'new' | 'recording' | 'paused' | 'stopped' | 'failed' = 'new';
  failed: Error | null = null;
  /** Packets the queue had no room for. */
  droppedPackets = 0;
  /** Packets of streams `setStream` never named. */
  unknownPackets = 0;
  readonly startedMs: number[] = [];
  readonly pausedMs: number[] = [];
  private endMs = 0;
  private readonly now: () => number;
  private readonly streams = new Map<number, StreamState>();
  private readonly parties = new Map<string, Party>();
  private pcap: PcapWriter | null = null;
  private mixer: AudioMixer | null = null;
  private mixPath = '';
  // The queue: full arenas, and the one being filled.
  private arenas: Buffer[] = [];
  private arena = Buffer.allocUnsafe(ARENA);
  private used = 0;
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Timeline ms = arrival ms - offset: recording start plus time spent paused. */
  private offsetMs = 0;
  private epoch = 0;

  constructor(private readonly opts: RecorderOptions) {
    this.now = opts.now ?? Date.now;
  }

  private path(suffix: string): string { return join(this.opts.dir, this.opts.stem + suffix); }

  start(): void {
    if (this.state !== 'new') return;
    const t = this.now();
    this.startedMs.push(t);
    this.offsetMs = t;
    this.state = 'recording';
    if (this.opts.pcap !== false) this.pcap = new PcapWriter(this.path('.pcap'), (e) => this.fail(e));
  }

  /** Packets until `resume` are not recorded; the audio files skip the paused time. */
  pause(): void {
    if (this.state !== 'recording') return;
    this.pausedMs.push(this.now());
    this.state = 'paused';
  }

  resume(): void {
    if (this.state !== 'paused') return;
    const t = this.now();
    this.offsetMs += t - this.pausedMs[this.pausedMs.length - 1]!;
    this.startedMs.push(t);
    this.epoch = (this.epoch + 1) & 0xff; // streams re-anchor their timestamps after the gap
    this.state = 'recording';
  }

  /** Names a stream or updates it (a learned address, new codecs after a re-INVITE). */
  setStream(id: number, info: RecordedStream): void {
    const flow = pcapFlow(info.src, info.dst);
    const s: StreamState = this.streams.get(id) ?? { info, flow, audio: null, epoch: 0, packets: 0 };
    s.info = info;
    s.flow = flow;
    const table = codecTable(info.codecs);
    if (info.kind === 'rtp' && this.opts.audio !== false && table.some((t) => t !== null)) {
      if (s.audio) s.audio.codecs = table;
      else s.audio = new StreamAudio(this.party(info.tag).index, table);
    }
    this.streams.set(id, s);
  }

  private party(tag: string): Party {
    let p = this.parties.get(tag);
    if (p) return p;
    if (this.mixer === null) {
      this.mixPath = this.path('-mix.wav');
      this.mixer = new AudioMixer(new WavWriter(this.mixPath, (e) => this.fail(e)));
    }
    // Numbered, not named by tag: a tag is peer input. The metadata maps numbers to tags.
    const path = this.path(`-${this.parties.size + 1}.wav`);
    const writer = new WavWriter(path, (e) => this.fail(e));
    p = { tag, index: this.mixer.addParty(writer), writer, path };
    this.parties.set(tag, p);
    return p;
  }

  /** The packet path: copies an RTP datagram (decrypted) into the queue. Never throws or waits. */
  rtp(id: number, buf: Uint8Array, arrivalMs: number): void { this.enqueue(id, 0, buf, arrivalMs); }

  /** Same for RTCP: it goes into the pcap only. */
  rtcp(id: number, buf: Uint8Array, arrivalMs: number): void { this.enqueue(id, 1, buf, arrivalMs); }

  private enqueue(id: number, kind: number, buf: Uint8Array, arrivalMs: number): void {
    if (this.state !== 'recording') return;
    const need = REC_HEADER + buf.length;
    if (this.queued + need > MAX_QUEUED_BYTES || buf.length > 0xffff) { this.droppedPackets++; return; }
    if (this.used + need > ARENA) {
      this.arenas.push(this.arena.subarray(0, this.used));
      this.arena = Buffer.allocUnsafe(ARENA);
      this.used = 0;
    }
    const a = this.arena, o = this.used;
    a.writeUInt32LE(id >>> 0, o);
    a[o + 4] = kind;
    a[o + 5] = this.epoch;
    a.writeUInt16LE(buf.length, o + 6);
    a.writeDoubleLE(arrivalMs, o + 8);
    a.writeDoubleLE(arrivalMs - this.offsetMs, o + 16);
    a.set(buf, o + REC_HEADER);
    this.used += need;
    this.queued += need;
    if (this.timer === null) this.timer = setTimeout(() => this.drain(), DRAIN_MS).unref();
  }

  /** Feeds the queued packets to the writers (off the packet path). */
  private drain(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const chunks = this.arenas;
    chunks.push(this.arena.subarray(0, this.used));
    this.arenas = [];
    this.arena = Buffer.allocUnsafe(ARENA);
    this.used = 0;
    this.queued = 0;
    if (this.failed !== null) return;
    for (const c of chunks) {
      for (let o = 0; o + REC_HEADER <= c.length;) {
        const id = c.readUInt32LE(o), kind = c[o + 4]!, epoch = c[o + 5]!, len = c.readUInt16LE(o + 6);
        const data = c.subarray(o + REC_HEADER, o + REC_HEADER + len);
        const s = this.streams.get(id);
        if (s === undefined) this.unknownPackets++;
        else {
          s.packets++;
          this.pcap?.packet(s.flow, data, c.readDoubleLE(o + 8));
          if (kind === 0 && s.audio !== null && this.mixer !== null) {
            if (s.epoch !== epoch) { s.epoch = epoch; s.audio.reanchor(); }
            s.audio.put(this.mixer, data, Math.round((c.readDoubleLE(o + 16) * SAMPLE_RATE) / 1000));
          }
        }
        o += REC_HEADER + len;
      }
    }
    this.pcap?.flush();
    this.mixer?.settle();
  }

  private fail(err: Error): void {
    if (this.failed !== null) return;
    this.failed = err;
    this.state = 'failed';
    this.opts.onError(err);
  }

  /** Ends the recording: writes what is queued, closes the files, writes the metadata. */
  async stop(): Promise<RecordedFile[]> {
    if (this.state === 'stopped') return [];
    const wasNew = this.state === 'new';
    this.endMs = this.now();
    if (this.state !== 'failed') this.state = 'stopped';
    if (wasNew) return [];
    this.drain();
    const files: RecordedFile[] = [];
    if (this.pcap) files.push({ path: this.path('.pcap'), bytes: await this.pcap.close(), kind: 'pcap' });
    if (this.mixer) {
      const sizes = await this.mixer.close();
      const parties = [...this.parties.values()].sort((a, b) => a.index - b.index);
      for (const p of parties) files.push({ path: p.path, bytes: sizes[p.index]!, kind: 'wav', tag: p.tag });
      files.push({ path: this.mixPath, bytes: sizes[parties.length]!, kind: 'mix' });
    }
    if (this.failed === null) {
      const meta = new FileSink(this.path('.json'), (e) => this.fail(e));
      meta.write(Buffer.from(JSON.stringify(this.metadata(files), null, 2) + '\n'));
      files.push({ path: meta.path, bytes: await meta.close(), kind: 'metadata' });
    }
    return this.failed === null ? files : files.filter((f) => f.bytes > 0);
  }

  private metadata(files: RecordedFile[]): object {
    const iso = (ms: number): string => new Date(ms).toISOString();
    return {
      callId: this.opts.callId,
      metadata: this.opts.metadata ?? '',
      start: iso(this.startedMs[0]!),
      end: iso(this.endMs),
      tags: [...new Set([...this.streams.values()].map((s) => s.info.tag))],
      // Recorded intervals: audio files hold these back to back.
      intervals: this.startedMs.map((s, i) => ({ start: iso(s), end: iso(this.pausedMs[i] ?? this.endMs) })),
      parties: [...this.parties.values()].map((p) => ({ tag: p.tag, file: p.path })),
      streams: [...this.streams].map(([id, s]) => ({
        id, tag: s.info.tag, kind: s.info.kind, src: s.info.src, dst: s.info.dst, codecs: s.info.codecs, packets: s.packets,
      })),
      files: files.map((f) => ({ ...f })),
      droppedPackets: this.droppedPackets,
    };
  }
}
