// Audio of G.711 calls: RTP payloads decoded onto a shared timeline, written as one mono
// 8 kHz 16-bit WAV per party and one mix of all parties. Loss, gaps and reordering are
// placed by RTP timestamp, so what is missing is silence and the timing stays right.
import type { FileHandle } from 'node:fs/promises';
import { FileSink } from './file-sink.js';
import { ALAW_TO_PCM, ULAW_TO_PCM, decodeInto } from './g711.js';

export const SAMPLE_RATE = 8000;
const WAV_HEADER = 44;
/** Audio kept in memory before it is written: packets up to this late still find their place. */
const REORDER_MS = 1000;
/** Pending audio per party; a packet further ahead than this forces older audio out first. */
const WINDOW_SAMPLES = 4 * SAMPLE_RATE;
/** A timestamp this far from what the arrival time says re-anchors the stream (a jump, a new source). */
const RESYNC_SAMPLES = 2 * SAMPLE_RATE;

/** WAVE header (RIFF, "fmt " PCM chunk, "data"); the sizes are patched on close. */
function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);                  // fmt chunk size
  h.writeUInt16LE(1, 20);                   // WAVE_FORMAT_PCM
  h.writeUInt16LE(1, 22);                   // mono
  h.writeUInt32LE(SAMPLE_RATE, 24);
  h.writeUInt32LE(SAMPLE_RATE * 2, 28);     // byte rate
  h.writeUInt16LE(2, 32);                   // block align
  h.writeUInt16LE(16, 34);                  // bits per sample
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

export class WavWriter {
  private readonly sink: FileSink;
  private samples = 0;

  constructor(path: string, onError: (err: Error) => void) {
    this.sink = new FileSink(path, onError);
    this.sink.write(wavHeader(0));
  }

  /** Appends samples (copied). */
  write(pcm: Int16Array): void {
    if (pcm.length === 0 || this.sink.failed !== null) return;
    const b = Buffer.allocUnsafe(pcm.length * 2);
    for (let i = 0; i < pcm.length; i++) b.writeInt16LE(pcm[i]!, i * 2); // WAV is little-endian
    this.sink.write(b);
    this.samples += pcm.length;
  }

  close(): Promise<number> {
    const dataBytes = this.samples * 2;
    return this.sink.close(async (fh: FileHandle) => { await fh.write(wavHeader(dataBytes), 0, WAV_HEADER, 0); });
  }
}

export type AudioCodec = 'PCMU' | 'PCMA';

/** The codec of each payload type (from the SDP's rtpmap or the static table); others are skipped. */
export function codecTable(codecs: Readonly<Record<number, string>>): (Int16Array | null)[] {
  const t: (Int16Array | null)[] = new Array(128).fill(null);
  // RFC 3551 table 4: 0 and 8 are static; a dynamic type only counts with an 8 kHz rtpmap.
  for (const [pt, enc] of Object.entries(codecs)) {
    const name = enc.toUpperCase().split('/');
    if (name[1] !== undefined && name[1] !== '8000') continue;
    if (name[0] === 'PCMU') t[+pt] = ULAW_TO_PCM;
    else if (name[0] === 'PCMA') t[+pt] = ALAW_TO_PCM;
  }
  return t;
}

/** Where one RTP stream's packets go on the timeline. */
export class StreamAudio {
  private anchored = false;
  private anchorPos = 0;
  private anchorTs = 0;
  private ssrc = 0;

  constructor(readonly party: number, public codecs: (Int16Array | null)[]) {}

  /** The stream starts again from its next packet's arrival time (after a pause). */
  reanchor(): void { this.anchored = false; }

  /**
   * Decodes one RTP packet heard at timeline position `arrivalPos` (samples) into `mixer`.
   * Telephone events, comfort noise and unknown codecs are skipped: their time stays silent.
   */
  put(mixer: AudioMixer, buf: Uint8Array, arrivalPos: number): void {
    if (buf.length < 12 || (buf[0]! & 0xc0) !== 0x80) return;
    const table = this.codecs[buf[1]! & 0x7f];
    if (!table) return;
    // RFC 3550 5.1: CSRCs and the extension come before the payload, padding after it.
    let off = 12 + (buf[0]! & 0x0f) * 4;
    if (buf[0]! & 0x10) {
      if (off + 4 > buf.length) return;
      off += 4 + ((buf[off + 2]! << 8) | buf[off + 3]!) * 4;
    }
    let end = buf.length;
    if (buf[0]! & 0x20) end -= buf[end - 1]!;
    if (off >= end) return;
    const ts = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
    const ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
    let pos = this.anchorPos + ((ts - this.anchorTs) | 0);
    if (!this.anchored || ssrc !== this.ssrc || Math.abs(pos - arrivalPos) > RESYNC_SAMPLES) {
      this.anchored = true;
      this.ssrc = ssrc;
      this.anchorPos = pos = arrivalPos;
      this.anchorTs = ts;
    }
    mixer.put(this.party, pos, table, buf.subarray(off, end));
  }
}

/** The timeline: pending audio per party, written out in order to the party and mixed files. */
export class AudioMixer {
  /** Samples before this position are on their way to disk. */
  private flushed = 0;
  /** Furthest position any party has reached. */
  end = 0;
  private readonly parties: WavWriter[] = [];
  private readonly pending: Int16Array[] = [];
  private readonly mix = new Int32Array(WINDOW_SAMPLES);

  constructor(private readonly mixed: WavWriter | null) {}

  /** A party's file; one that joins late starts with silence up to now, so all files line up. */
  addParty(w: WavWriter): number {
    for (let left = this.flushed; left > 0; left -= WINDOW_SAMPLES) w.write(new Int16Array(Math.min(left, WINDOW_SAMPLES)));
    this.pending.push(new Int16Array(WINDOW_SAMPLES));
    return this.parties.push(w) - 1;
  }

  put(party: number, pos: number, table: Int16Array, payload: Uint8Array): void {
    let src = payload;
    if (pos < this.flushed) { src = src.subarray(this.flushed - pos); pos = this.flushed; } // too late
    if (src.length === 0 || src.length > WINDOW_SAMPLES) return;
    if (pos + src.length > this.flushed + WINDOW_SAMPLES) this.flush(pos + src.length - WINDOW_SAMPLES);
    decodeInto(table, src, this.pending[party]!, pos - this.flushed);
    if (pos + src.length > this.end) this.end = pos + src.length;
  }

  /** Writes out what no late packet can still change. */
  settle(): void { this.flush(this.end - (REORDER_MS * SAMPLE_RATE) / 1000); }

  /** Writes out everything before `upTo`; a jump past the window writes silence in between. */
  flush(upTo: number): void {
    while (upTo > this.flushed) {
      const n = Math.min(upTo - this.flushed, WINDOW_SAMPLES);
      this.mix.fill(0, 0, n);
      this.pending.forEach((p, i) => {
        const out = p.slice(0, n);
        for (let k = 0; k < n; k++) this.mix[k]! += out[k]!;
        this.parties[i]!.write(out);
        p.copyWithin(0, n);
        p.fill(0, WINDOW_SAMPLES - n);
      });
      if (this.mixed) {
        const m = new Int16Array(n);
        for (let k = 0; k < n; k++) { const v = this.mix[k]!; m[k] = v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
        this.mixed.write(m);
      }
      this.flushed += n;
    }
  }

  /** Writes out everything, then closes the files; resolves with their sizes in party order, mix last. */
  async close(): Promise<number[]> {
    this.flush(this.end);
    return Promise.all([...this.parties, ...(this.mixed ? [this.mixed] : [])].map((w) => w.close()));
  }
}
