// Per-socket counters in flat Float64Array slots, so a media worker's figures can be read by the
// main thread through shared memory (no round trip per `stats()`). Imports nothing of ours.

/** Float64 fields per socket slot. */
export const SLOT_FIELDS = 14;
export const C_PACKETS = 0;
export const C_BYTES = 1;
export const C_ERRORS = 2;
export const C_DROPPED = 3;
export const C_LAST_MS = 4;
/** -1 while no RTP packet has arrived. */
export const C_SSRC = 5;
// Stream quality (media/quality.ts), in the RTP socket's slot: RFC 3550 figures of what arrived,
// and what the party's peer reported about it in RTCP (-1: no report yet).
export const Q_RECEIVED = 6;
export const Q_LOST = 7;
export const Q_DUPLICATES = 8;
export const Q_OUT_OF_ORDER = 9;
export const Q_JITTER_MS = 10;
export const Q_RTCP_FRACTION_LOST = 11;
export const Q_RTCP_CUM_LOST = 12;
export const Q_RTT_MS = 13;

export const SLOTS_PER_CHUNK = 2048;

export interface Slot { chunk: number; index: number; view: Float64Array }

/**
 * Allocates slots in chunks that never move (a chunk, once made, lives as long as the plane), so
 * a reader that holds a chunk keeps a valid view. `shared` chunks are SharedArrayBuffers and are
 * announced through `onChunk` before any slot in them is handed out.
 */
export class CounterSlots {
  private readonly chunks: Float64Array[] = [];
  private readonly free: number[] = [];

  constructor(
    private readonly shared: boolean,
    private readonly onChunk: (index: number, buffer: ArrayBufferLike) => void = () => undefined,
  ) {}

  alloc(): Slot {
    let code = this.free.pop();
    if (code === undefined) {
      const index = this.chunks.length;
      const bytes = SLOTS_PER_CHUNK * SLOT_FIELDS * 8;
      const buf = this.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
      this.chunks.push(new Float64Array(buf));
      this.onChunk(index, buf);
      // Lowest slots first (pop takes from the end).
      for (let i = SLOTS_PER_CHUNK - 1; i >= 0; i--) this.free.push(index * SLOTS_PER_CHUNK + i);
      code = this.free.pop()!;
    }
    const chunk = Math.floor(code / SLOTS_PER_CHUNK), index = code % SLOTS_PER_CHUNK;
    const view = this.chunks[chunk]!.subarray(index * SLOT_FIELDS, (index + 1) * SLOT_FIELDS);
    view.fill(0);
    view[C_SSRC] = -1;
    view[Q_RTCP_FRACTION_LOST] = -1; view[Q_RTCP_CUM_LOST] = -1; view[Q_RTT_MS] = -1;
    return { chunk, index, view };
  }

  release(slot: Slot): void {
    this.free.push(slot.chunk * SLOTS_PER_CHUNK + slot.index);
  }
}
