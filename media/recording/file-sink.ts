// An append-only file written in the background: callers queue bytes and never wait or catch.
// The first error (ENOSPC, EACCES, a missing directory…) stops the file and is reported once.
import { open, type FileHandle } from 'node:fs/promises';

/** Bytes queued past this are dropped (and counted): a slow disk must not eat the heap. */
export const MAX_PENDING_BYTES = 16 << 20;

export class FileSink {
  /** Bytes on disk so far. */
  size = 0;
  /** Bytes refused because the disk fell behind or the file failed. */
  droppedBytes = 0;
  failed: Error | null = null;
  private readonly handle: Promise<FileHandle | null>;
  private queue: Buffer[] = [];
  private queued = 0;
  private writing: Promise<void> | null = null;
  private closing = false;

  constructor(readonly path: string, private readonly onError: (err: Error) => void, private readonly maxPending = MAX_PENDING_BYTES) {
    this.handle = open(path, 'w').catch((err: Error) => { this.fail(err); return null; });
  }

  /** Queues `chunk`, which the caller must not touch afterwards. Never throws. */
  write(chunk: Buffer): void {
    if (this.failed !== null || this.closing) { this.droppedBytes += chunk.length; return; }
    if (this.queued + chunk.length > this.maxPending) { this.droppedBytes += chunk.length; return; }
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.writing ??= this.pump();
  }

  private async pump(): Promise<void> {
    const fh = await this.handle;
    while (fh !== null && this.failed === null && this.queue.length > 0) {
      // One write of everything queued: few syscalls, and the order is kept.
      const data = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue, this.queued);
      this.queue = [];
      this.queued = 0;
      try {
        let off = 0;
        while (off < data.length) off += (await fh.write(data, off, data.length - off, this.size + off)).bytesWritten;
        this.size += data.length;
      } catch (err) {
        this.droppedBytes += data.length; // a partial write is as good as lost
        this.fail(err as Error);
      }
    }
    this.writing = null;
  }

  private fail(err: Error): void {
    if (this.failed !== null) return;
    this.failed = err;
    this.droppedBytes += this.queued;
    this.queue = [];
    this.queued = 0;
    this.onError(err);
  }

  /**
   * Flushes, lets `finish` overwrite bytes already written (a header's sizes), and closes.
   * Resolves with the file's size; never rejects.
   */
  async close(finish?: (fh: FileHandle) => Promise<unknown>): Promise<number> {
    this.closing = true;
    while (this.writing !== null) await this.writing;
    const fh = await this.handle;
    if (fh === null) return 0;
    try {
      if (this.failed === null && finish) await finish(fh);
    } catch (err) {
      this.fail(err as Error);
    }
    await fh.close().catch(() => undefined);
    return this.size;
  }
}
